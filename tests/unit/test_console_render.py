"""What the console does to what it shows: exchanges readable and masked, CSV cells inert,
charts that say what they draw."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from his_pacs_ws.web.app import _cell
from his_pacs_ws.web.charts import calls_per_minute, percentile_bars
from his_pacs_ws.web.xmlview import pretty_xml


def test_an_exchange_is_indented_and_a_password_never_shown():
    body = (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header><w:Security xmlns:w="x">'
            b'<w:UsernameToken><w:Username>his1</w:Username><w:Password Type="t">secret-1</w:Password>'
            b'<w:Nonce>bm9uY2U=</w:Nonce></w:UsernameToken></w:Security></e:Header><e:Body/></e:Envelope>')
    shown = pretty_xml(body)
    assert "secret-1" not in shown and "bm9uY2U=" not in shown and shown.count("***") == 2
    assert "\n  <e:Header>" in shown and "his1" in shown


def test_a_body_that_is_not_xml_is_shown_as_text_masked_too():
    assert pretty_xml(b"<Password>x</Password") == "<Password>x</Password"  # not closed: nothing to mask
    assert pretty_xml(b"garbage <Password>pw</Password> more <") == "garbage <Password>***</Password> more <"
    assert pretty_xml(None) is None


def test_csv_cells_that_a_spreadsheet_would_run_are_kept_as_text():
    assert [_cell(v) for v in ("=1+1", "+86 138", "-2", "@SUM(A1)", "脑梗死", None, 3)] == [
        "'=1+1", "'+86 138", "'-2", "'@SUM(A1)", "脑梗死", "", "3"]


def test_the_calls_chart_stacks_faults_on_successes_per_minute():
    start = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
    minutes = [start + timedelta(minutes=i) for i in range(60)]
    ok, fault = [0] * 60, [0] * 60
    ok[10], fault[10], ok[59] = 3, 1, 2
    svg = calls_per_minute({"minutes": minutes, "OK": ok, "FAULT": fault}, ZoneInfo("Asia/Shanghai"),
                           {"title": "calls", "ok": "OK", "fault": "Faults"})
    assert svg.count("M") >= 3 and 'data-outcome="OK"' in svg and 'data-outcome="FAULT"' in svg
    assert ">OK 5<" in svg and ">Faults 1<" in svg
    assert ">09:00<" in svg and ">10:00<" not in svg  # 01:00 UTC on the hospital clock; every third hour


def test_percentile_bars_put_p90_beyond_the_median_and_say_the_numbers():
    svg = percentile_bars([{"department": "CT", "median": 42.0, "p90": 96.0, "count": 6}],
                          {"title": "t", "median": "median", "p90": "p90", "empty": "none"})
    assert 'data-median="42.0"' in svg and 'data-p90="96.0"' in svg and "median 42 · p90 96 · n=6" in svg
    assert "none" in percentile_bars([], {"title": "t", "median": "m", "p90": "p", "empty": "none"})
