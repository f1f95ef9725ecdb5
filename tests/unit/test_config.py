"""Settings from the environment."""

import pytest

from his_pacs_ws.config import ConfigError, Settings
from his_pacs_ws.domain.billing import ChargePoint


def test_defaults():
    settings = Settings.from_env({})
    assert settings.charge_point is ChargePoint.NURSE_SEND
    assert settings.timezone == "Asia/Shanghai"
    assert settings.critical_ack_minutes == 10
    assert settings.database_url is None


def test_the_database_timeout_is_read():
    assert Settings.from_env({}).db_timeout_seconds == 5
    assert Settings.from_env({"HIS_PACS_DB_TIMEOUT_SECONDS": "2"}).db_timeout_seconds == 2


def test_charge_point_per_department():
    settings = Settings.from_env({
        "HIS_PACS_CHARGE_POINT": "pacs_register",
        "HIS_PACS_CHARGE_POINT_BY_DEPARTMENT": "MR=PACS_REGISTER, US=NURSE_SEND",
    })
    assert settings.charge_point_for("MR") is ChargePoint.PACS_REGISTER
    assert settings.charge_point_for("US") is ChargePoint.NURSE_SEND
    assert settings.charge_point_for("CT") is ChargePoint.PACS_REGISTER


@pytest.mark.parametrize("env", [
    {"HIS_PACS_CHARGE_POINT": "ON_DISCHARGE"},
    {"HIS_PACS_CHARGE_POINT_BY_DEPARTMENT": "MR"},
    {"HIS_PACS_TIMEZONE": "Mars/Olympus"},
    {"HIS_PACS_PORT": "eighty"},
    {"HIS_PACS_LOG_LEVEL": "VERBOSE"},
    {"HIS_PACS_TOKEN_WINDOW_SECONDS": "0"},
    {"HIS_PACS_SECRET_KEY": "abc"},
    {"HIS_PACS_SECRET_KEY": "YWJj"},  # base64, but not 32 bytes
    {"HIS_PACS_PUBLIC_URL": "his-pacs.example"},
    {"HIS_PACS_AUTH": "maybe"},
    {"HIS_PACS_DB_TIMEOUT_SECONDS": "0"},
    {"HIS_PACS_DB_TIMEOUT_SECONDS": "soon"},
])
def test_bad_settings_are_refused_with_their_name(env):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert "HIS_PACS_" in str(err.value)


def test_cli_flags_win():
    settings = Settings.from_env({"HIS_PACS_PORT": "9000"}).with_overrides(port=9100, host=None)
    assert (settings.port, settings.host) == (9100, "127.0.0.1")


def test_unknown_settings_are_named(capsys):
    Settings.from_env({"HIS_PACS_CHARGE_POINT_BY_DEPRTMENT": "MR=PACS_REGISTER"})
    assert "HIS_PACS_CHARGE_POINT_BY_DEPRTMENT" in capsys.readouterr().err


def test_the_wsdl_announces_the_public_url_or_the_request_host():
    from his_pacs_ws.soap.app import _base_url

    environ = {"HTTP_HOST": "10.1.2.3:8000", "wsgi.url_scheme": "http", "SERVER_NAME": "s", "SERVER_PORT": "80"}
    assert _base_url(environ, Settings()) == "http://10.1.2.3:8000"
    assert _base_url({**environ, "HTTP_X_FORWARDED_PROTO": "https"}, Settings()) == "https://10.1.2.3:8000"
    assert _base_url(environ, Settings(public_url="https://his-pacs.example")) == "https://his-pacs.example"
    assert _base_url({**environ, "HTTP_HOST": 'x"><y'}, Settings()) == "http://s:80"


def test_view_mode_settings():
    settings = Settings.from_env({"HIS_PACS_VIEWS_LISTEN": "0.0.0.0:5433", "HIS_PACS_INBOX": "off",
                                  "HIS_PACS_INBOX_SWEEP_SECONDS": "3"})
    assert (settings.views_listen, settings.inbox, settings.inbox_sweep_seconds) == ("0.0.0.0:5433", False, 3)
    assert Settings.from_env({}).inbox is True and Settings.from_env({}).views_listen is None


@pytest.mark.parametrize("env", [
    {"HIS_PACS_VIEWS_LISTEN": "5433"},
    {"HIS_PACS_VIEWS_LISTEN": "127.0.0.1:70000"},
    {"HIS_PACS_VIEWS_LISTEN": "127.0.0.1:5433", "HIS_PACS_DATABASE_URL": "postgresql://db/his"},
    {"HIS_PACS_INBOX_SWEEP_SECONDS": "0"},
    {"HIS_PACS_INBOX": "sometimes"},
])
def test_bad_view_mode_settings_are_named(env):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert next(iter(env)) in str(err.value) or "HIS_PACS_VIEWS_LISTEN" in str(err.value)

