"""HIS_PACS_AUTH=off, the local demo mode: calls need no token, and every worker says so."""

from __future__ import annotations

import io
import logging

from his_pacs_ws.config import Settings
from his_pacs_ws.soap.app import build_app

PING = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="urn:his-pacs-ws:v1">'
        b"<s:Body><v:Ping/></s:Body></s:Envelope>")


def call(app, body):
    statuses = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/ws/his", "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "text/xml; charset=utf-8", "wsgi.input": io.BytesIO(body),
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "QUERY_STRING": ""}
    answer = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return statuses[0], answer


def test_demo_mode_is_open_and_loud(database_url, caplog):
    with caplog.at_level(logging.WARNING):
        app = build_app(Settings(auth=False), database_url)
    assert "AUTHENTICATION IS OFF" in caplog.text
    status, answer = call(app, PING)
    assert status.startswith("200") and b"ServiceVersion" in answer
    app.runtime.engine.dispose()


def test_with_authentication_on_the_same_call_is_refused(database_url, tmp_path):
    app = build_app(Settings(data_dir=tmp_path), database_url)
    status, answer = call(app, PING)
    assert status.startswith("500") and b"Client.AuthenticationFailed" in answer
    app.runtime.engine.dispose()
