"""The SOAP tier: `his-pacs-ws serve` as a real gunicorn server on the test database, and
zeep clients built from the checked-in WSDL snapshots, as a vendor would build them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zeep
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

ROOT = Path(__file__).resolve().parents[2]
WSDL = ROOT / "wsdl"
TNS = "urn:his-pacs-ws:v1"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone(timedelta(hours=8)))
DOCTOR = {"Code": "D001", "Name": "王医生"}
NURSE = {"Code": "N001", "Name": "李护士"}
CLERK = {"Code": "R001", "Name": "登记员"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    log_path: Path
    env: dict
    pid: int = 0  # the serve process


# Partner systems the test server knows (added with `his-pacs-ws systems add`).
HIS_USER, HIS_PASSWORD = "his-test", "his-test-password-1"
PACS_USER, PACS_PASSWORD = "pacs-test", "pacs-test-password-1"
PACS_CT_USER, PACS_CT_PASSWORD = "pacs-ct", "pacs-ct-password-1"  # serves CT only
HIS_TWO_USER, HIS_TWO_PASSWORD = "his-two", "his-two-password-1"
SYSTEMS = [
    (HIS_USER, HIS_PASSWORD, ["--role", "HIS"]),
    (HIS_TWO_USER, HIS_TWO_PASSWORD, ["--role", "HIS"]),
    (PACS_USER, PACS_PASSWORD, ["--role", "PACS"]),
    (PACS_CT_USER, PACS_CT_PASSWORD, ["--role", "PACS", "--departments", "CT"]),
]


def run_cli(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "his_pacs_ws.cli", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)


# package: the server (its inbox processor and deliverer on the suite's database) stops
# when the tests here end, and never races the integration tests that drain the inbox
@pytest.fixture(scope="package")
def server(database_url, tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("server")
    log_path = home / "server.log"
    env = {
        **os.environ,
        "HIS_PACS_DATA_DIR": str(home),  # the secret key lives here
        "HIS_PACS_CHARGE_POINT_BY_DEPARTMENT": "MR=PACS_REGISTER",
        "HIS_PACS_MAX_REQUEST_BYTES": "65536",
        "HIS_PACS_CRITICAL_ACK_MINUTES": "2",  # a short deadline, so overdue values show quickly
        "HIS_PACS_LOG_LEVEL": "INFO",
        # push mode: quick retries, so that outage rehearsals end within seconds
        "HIS_PACS_DELIVERY_BACKOFF_SECONDS": "0.2",
        "HIS_PACS_DELIVERY_BACKOFF_CAP_SECONDS": "1",
        "HIS_PACS_CRITICAL_BACKOFF_CAP_SECONDS": "0.5",
    }
    for name, password, options in SYSTEMS:
        added = run_cli("systems", "add", name, *options, "--password-stdin", "--database-url", database_url,
                        env=env, stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "his_pacs_ws.cli", "serve", "--database-url", database_url,
             "--port", str(port), "--workers", "2"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/health", timeout=1).ok:
                    break
            except requests.RequestException:  # not up yet, or busy starting
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + log_path.read_text())
            time.sleep(0.2)
        yield Server(url, log_path, env, process.pid)
    finally:  # whatever happened, the server does not outlive the tests
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="package")
def base_url(server):
    return server.url


def client(base_url: str, name: str, user: str | None = None, password: str | None = None, *, digest=True):
    """A zeep client as a vendor builds it: from the WSDL, with a UsernameToken."""
    user = user or (HIS_USER if name == "his" else PACS_USER)
    password = password or (HIS_PASSWORD if name == "his" else PACS_PASSWORD)
    c = zeep.Client(str(WSDL / f"{name}.wsdl"), wsse=UsernameToken(user, password, use_digest=digest))
    service = "HisService" if name == "his" else "PacsService"
    return c.create_service(f"{{{TNS}}}{service}", f"{base_url}/ws/{name}")


@pytest.fixture(scope="package")
def his(base_url):
    return client(base_url, "his")


@pytest.fixture(scope="package")
def pacs(base_url):
    return client(base_url, "pacs")


def security_header(user: str = HIS_USER, password: str = HIS_PASSWORD) -> str:
    """A PasswordText UsernameToken header for hand-written envelopes."""
    return (
        '<soapenv:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken>'
        f"<wsse:Username>{user}</wsse:Username><wsse:Password>{password}</wsse:Password>"
        "</wsse:UsernameToken></wsse:Security></soapenv:Header>"
    )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def fault_code(fault: Fault) -> str:
    """zeep reports 'soap11env:Client.X'; the contract code is the part after the dot."""
    return fault.code.rsplit(".", 1)[-1]


def fault_detail(fault: Fault) -> dict:
    node = fault.detail.find(f"{{{TNS}}}ServiceFault")
    return {child.tag.split("}")[1]: child.text for child in node}


def application_request(patient_type="OUTPATIENT", executing="CT", items=None, **overrides):
    request = {
        "MessageId": unique("M"),
        "ApplicationNo": unique("A"),
        "Patient": {"PatientId": unique("P"), "Name": "小明", "Sex": "M"},
        "Visit": {"VisitNo": unique("V"), "PatientType": patient_type},
        "OrderingDoctor": DOCTOR,
        "OrderingDepartmentCode": "NK",
        "OrderingDepartmentName": "内科",
        "ExecutingDepartmentCode": executing,
        "ExecutingDepartmentName": "CT室",
        "OrderedAt": T0,
        "Items": {"ApplicationItem": items or [
            {"ItemCode": "CT001", "ItemName": "头颅CT平扫", "Quantity": Decimal("1"),
             "UnitPrice": Decimal("150.00"), "Modality": "CT", "BodyPart": "头颅"}]},
    }
    request.update(overrides)
    return request
