"""A foreign stack hosts a callback service: PHP's SoapServer, in WSDL mode on
wsdl/pacs-callback.wsdl, receives what his-pacs-ws pushes, Chinese text and decimals intact."""

from __future__ import annotations

import json
import subprocess
import time

from tests.soap.conftest import WSDL, free_port
from tests.soap.interop.conftest import HERE
from tests.soap.test_push import department, paid_application, push  # noqa: F401 (fixture)


def test_php_soapserver_receives_the_pushed_application(his, push, foreign_stacks, tmp_path):
    port, received = free_port(), tmp_path / "received.jsonl"
    php = subprocess.Popen(["php", "-S", f"127.0.0.1:{port}", str(HERE / "php" / "receiver.php")],
                           env={"PATH": "/usr/bin:/bin", "HIS_PACS_RECEIVED": str(received),
                                "HIS_PACS_CALLBACK_WSDL": str(WSDL / "pacs-callback.wsdl")},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        dept = department()

        class Url:  # what push.system needs of a receiver
            url = f"http://127.0.0.1:{port}/"

        push.system("PACS", Url, departments=dept)
        number = paid_application(his, dept)
        deadline = time.monotonic() + 30
        while not (received.exists() and number in received.read_text(encoding="utf-8")):
            assert php.poll() is None and time.monotonic() < deadline, "nothing reached the PHP receiver"
            time.sleep(0.2)
    finally:
        php.terminate()
        php.wait(timeout=10)
    [entry] = [json.loads(line) for line in received.read_text(encoding="utf-8").splitlines()]
    assert entry["operation"] == "ApplicationReleased" and entry["message_id"].startswith("HPW-")
    assert entry["what"] == f"{number} RELEASED 小明 头颅CT平扫 150.00"
