"""The deployment kit, run: the systemd units verified, the environment file read as the
service reads it, the pinned constraints, and Debian's nginx as the TLS proxy and as the
load balancer over two nodes on one PostgreSQL."""

from __future__ import annotations

import base64
import configparser
import hashlib
import os
import re
import sys
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from importlib import metadata
from pathlib import Path

import pytest
import requests
import zeep
from zeep.exceptions import Fault, TransportError
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from his_pacs_ws.config import ENV_PREFIX, KNOWN, Settings
from his_pacs_ws.services.secrets import new_key
from tests.pgcluster import Cluster, wait_for
from tests.soap.conftest import (
    HIS_PASSWORD, HIS_USER, NURSE, PACS_PASSWORD, PACS_USER, ROOT, T0, TNS, WSDL, application_request,
    fault_code, free_port, unique,
)
from tests.soap.nodes import Node
from tests.soap.push import Receiver, push_system

DEPLOY = ROOT / "deploy"
RADIOLOGIST = {"Code": "RAD01", "Name": "赵医生"}


# -- the files -----------------------------------------------------------------------------

def test_environment_file_holds_known_settings_the_service_accepts():
    values = {}
    for line in (DEPLOY / "his-pacs-ws.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    assert all(name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):] in KNOWN for name in values), values
    settings = Settings.from_env({**values, "HIS_PACS_SECRET_KEY": new_key()})
    assert settings.data_dir.is_absolute() and settings.host == "127.0.0.1" and settings.log_format == "json"
    assert settings.public_url.startswith("https://") and settings.deliverers == 1


@pytest.mark.parametrize("unit", ["his-pacs-ws.service", "his-pacs-ws-deliver.service"])
def test_systemd_units_verify(unit, tmp_path):
    """systemd's own check, with the paths of this checkout in place of /opt and /etc."""
    text = (DEPLOY / "systemd" / unit).read_text()
    command = re.search(r"^ExecStart=/opt/his-pacs-ws/bin/his-pacs-ws (\S+)$", text, re.M).group(1)
    assert command == {"his-pacs-ws.service": "serve", "his-pacs-ws-deliver.service": "deliver"}[unit]
    binary = Path(sys.executable).parent / "his-pacs-ws"  # this run's venv (.venv, .venv-3.13, ...)
    local = tmp_path / unit
    local.write_text(text.replace("/opt/his-pacs-ws/bin/his-pacs-ws", str(binary))
                     .replace("/etc/his-pacs-ws/his-pacs-ws.env", str(DEPLOY / "his-pacs-ws.env")))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "Unknown" not in result.stderr, result.stderr
    unit_file = configparser.ConfigParser(strict=False, interpolation=None)
    unit_file.optionxform = str
    unit_file.read_string(text)
    assert unit_file["Service"]["RestartPreventExitStatus"] == "2"  # a bad setting is not retried
    assert unit_file["Service"]["KillSignal"] == "SIGTERM"
    helped = subprocess.run([str(binary), command, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and f"his-pacs-ws {command}" in helped.stdout, helped.stderr


def test_constraints_pin_every_dependency_as_installed():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    from packaging.requirements import Requirement

    wanted = (setup["options"]["install_requires"] + setup["options.extras_require"]["test"]).splitlines()
    for line in filter(None, (w.strip() for w in wanted)):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # for another Python (pgserver or its fork, legacy-cgi)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert metadata.version(name) == pins[name], f"{name}: installed {metadata.version(name)}, pinned {pins[name]}"


# -- nginx ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nginx_binary():
    subprocess.run(["bash", str(ROOT / "tests" / "soap" / "install_nginx.sh")], check=True, timeout=600)
    return "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    home = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(home / "server.key"),
                    "-out", str(home / "server.crt")], check=True, capture_output=True, timeout=60)
    return home / "server.crt", home / "server.key"


class Nginx:
    """deploy/nginx/his-pacs-ws.conf as shipped, with this test's port, certificate and nodes."""

    def __init__(self, binary: str, home: Path, certificate, upstreams: list[str]):
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.home = home
        crt, key = certificate
        site = (DEPLOY / "nginx" / "his-pacs-ws.conf").read_text()
        for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{self.port} ssl;"),
                         ("/etc/his-pacs-ws/tls/server.crt", str(crt)),
                         ("/etc/his-pacs-ws/tls/server.key", str(key)),
                         ("    server 127.0.0.1:8000;\n", "".join(f"    server {u};\n" for u in upstreams))):
            assert site.count(old) == 1, old
            site = site.replace(old, new)
        (home / "site.conf").write_text(site)
        temp = "".join(f"{kind}_temp_path {home}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi"))
        (home / "nginx.conf").write_text(
            f"daemon off;\n{'user root;' if os.geteuid() == 0 else ''}\nworker_processes 1;\npid {home}/nginx.pid;\n"
            f"error_log {home}/error.log;\nevents {{ worker_connections 256; }}\n"
            f"http {{\naccess_log {home}/access.log;\n{temp}include {home}/site.conf;\n}}\n")
        self.process = subprocess.Popen([binary, "-p", str(home), "-c", str(home / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would win over the test's own certificate
        self.session.verify = str(crt)

        def up():
            assert self.process.poll() is None, self.process.stderr.read().decode()
            try:
                return self.session.get(self.url + "/health/live", timeout=2).ok
            except requests.RequestException as exc:
                self.last_error = exc
                return False
        try:
            wait_for(up, 30, "nginx")
        except AssertionError:
            self.stop()
            raise AssertionError(f"nginx did not answer: {self.last_error!r}") from None

    def client(self, name: str, user: str, password: str):
        c = zeep.Client(str(WSDL / f"{name}.wsdl"), wsse=UsernameToken(user, password, use_digest=True),
                        transport=Transport(session=self.session, timeout=30, operation_timeout=30))
        return c.create_service(f"{{{TNS}}}{'HisService' if name == 'his' else 'PacsService'}",
                                f"{self.url}/ws/{name}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def test_tls_reverse_proxy_example(nginx_binary, certificate, server, tmp_path):
    """A partner reaches the service over TLS only, and the WSDL names the https address."""
    proxy = Nginx(nginx_binary, tmp_path, certificate, [server.url.removeprefix("http://")])
    try:
        wsdl = proxy.session.get(proxy.url + "/ws/his?wsdl", timeout=10)
        assert f'location="{proxy.url}/ws/his"' in wsdl.text
        his = proxy.client("his", HIS_USER, HIS_PASSWORD)
        assert his.Ping().ServiceVersion
        request = application_request()
        assert his.SubmitApplication(request=request).Status == "NEW"
        with pytest.raises(requests.exceptions.SSLError):  # a certificate nobody vouched for is refused
            requests.get(proxy.url + "/health", timeout=5, verify=requests.certs.where())
        plain = requests.get(f"http://127.0.0.1:{proxy.port}/health", timeout=5)
        assert plain.status_code == 400  # plain HTTP on the TLS port gets nothing through
        time.sleep(0.5)
        access = [line for line in server.log_path.read_text().splitlines()
                  if "his_pacs_ws.access" in line and "POST /ws/his 200" in line]
        assert access and "forwarded_for=127.0.0.1" in access[-1]
    finally:
        proxy.stop()


# -- two nodes -----------------------------------------------------------------------------

def _digest_ping(url: str, user: str, password: str, nonce: bytes, created: str) -> requests.Response:
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    kind = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    envelope = (
        f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="{TNS}"><s:Header>'
        f'<wsse:Security xmlns:wsse="{wsse}" xmlns:wsu="{wsu}"><wsse:UsernameToken>'
        f"<wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{kind}#PasswordDigest">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{kind[:-len("username-token-profile-1.0")]}soap-message-security-1.0#Base64Binary">'
        f"{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security></s:Header><s:Body><v:Ping/></s:Body></s:Envelope>")
    return requests.post(url + "/ws/his", data=envelope.encode(), timeout=10,
                         headers={"Content-Type": "text/xml; charset=utf-8"})


def _node_client(url: str, name: str):
    user, password = (HIS_USER, HIS_PASSWORD) if name == "his" else (PACS_USER, PACS_PASSWORD)
    c = zeep.Client(str(WSDL / f"{name}.wsdl"), wsse=UsernameToken(user, password, use_digest=True))
    return c.create_service(f"{{{TNS}}}{'HisService' if name == 'his' else 'PacsService'}", f"{url}/ws/{name}")


@pytest.fixture(scope="module")
def cluster():
    pg = Cluster().start()
    yield pg
    pg.stop()


def test_two_nodes_on_one_postgresql_behind_nginx(nginx_binary, certificate, cluster, tmp_path):
    """Nonces, MessageId replays, business keys, critical-value deadlines and push
    deliveries hold whichever node a call reaches; stopping one node loses no call and no
    notification. Each node runs its deliverer (`serve --deliverers 1`, the default)."""
    cluster.sql("CREATE DATABASE multinode")
    url = cluster.url("multinode")
    shared = {"HIS_PACS_SECRET_KEY": new_key(), "HIS_PACS_CRITICAL_ACK_MINUTES": "2"}  # the same on every node
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIS_PACS_")}
    migrated = subprocess.run([sys.executable, "-m", "his_pacs_ws.cli", "migrate", "--database-url", url],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, env={**env, **shared})
    assert migrated.returncode == 0, migrated.stderr
    for user, password, role in ((HIS_USER, HIS_PASSWORD, "HIS"), (PACS_USER, PACS_PASSWORD, "PACS")):
        added = subprocess.run([sys.executable, "-m", "his_pacs_ws.cli", "systems", "add", user, "--role", role,
                                "--password-stdin", "--database-url", url], cwd=ROOT, input=password + "\n",
                               capture_output=True, text=True, timeout=120,
                               env={**env, **shared, "HIS_PACS_DATA_DIR": str(tmp_path / "admin")})
        assert added.returncode == 0, added.stderr
    receiver = Receiver("pacs", tmp_path, "--slow", "0.05", "--quiet").start()  # a PACS's callback endpoint
    admin_env = {**env, **shared, "HIS_PACS_DATA_DIR": str(tmp_path / "admin")}
    push_system(url, admin_env, "PACS", receiver.url)
    nodes = [Node(url, tmp_path / f"node{i}", env=shared) for i in (1, 2)]
    proxy = None
    try:
        for node in nodes:
            node.wait_ready()
        a, b = nodes
        (tmp_path / "nginx").mkdir()
        proxy = Nginx(nginx_binary, tmp_path / "nginx", certificate, [n.url.removeprefix("http://") for n in nodes])
        his_a, his_b = _node_client(a.url, "his"), _node_client(b.url, "his")
        pacs_a, pacs_b = _node_client(a.url, "pacs"), _node_client(b.url, "pacs")

        # a nonce used on one node is refused on the other
        nonce, created = os.urandom(16), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert _digest_ping(a.url, HIS_USER, HIS_PASSWORD, nonce, created).status_code == 200
        replayed = _digest_ping(b.url, HIS_USER, HIS_PASSWORD, nonce, created)
        assert replayed.status_code == 500 and b"Client.AuthenticationFailed" in replayed.content

        # a MessageId answered on one node is replayed, not redone, on the other
        request = application_request()
        first = his_a.SubmitApplication(request=request)
        again = his_b.SubmitApplication(request=request)
        assert (again.ApplicationNo, again.Status) == (first.ApplicationNo, first.Status)
        with pytest.raises(Fault) as reused:
            his_b.SubmitApplication(request={**request, "OrderingDepartmentCode": "WK"})
        assert fault_code(reused.value) == "MessageIdReused"
        # the business key holds across nodes: the same ApplicationNo under a new MessageId
        with pytest.raises(Fault) as exists:
            his_b.SubmitApplication(request={**request, "MessageId": unique("M"), "OrderingDepartmentCode": "WK"})
        assert fault_code(exists.value) == "ApplicationExists"

        # the same critical value raised on both nodes at once is stored once
        no = request["ApplicationNo"]
        his_a.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": no, "Amount": Decimal("150.00"),
                                      "PaidAt": T0})
        number, reported = unique("CV"), datetime.now(timezone.utc) - timedelta(minutes=5)

        def raise_on(pacs):
            return pacs.RaiseCriticalValue(request={
                "MessageId": unique("M"), "CriticalValueNo": number, "ApplicationNo": no, "Finding": "气胸",
                "ReportedBy": RADIOLOGIST, "ReportedAt": reported})
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(raise_on, [pacs_a, pacs_b]))
        assert {answer.CriticalValueNo for answer in answers} == {number}
        # its deadline, and its being overdue, read the same on either node
        [on_a] = his_a.QueryCriticalValues(request={"ApplicationNo": no}).CriticalValue
        [on_b] = his_b.QueryCriticalValues(request={"ApplicationNo": no}).CriticalValue
        assert on_a.AckDeadline == on_b.AckDeadline and on_a.AckDeadline - on_a.ReportedAt == timedelta(minutes=2)
        assert on_a.Overdue and on_b.Overdue
        his_b.AcknowledgeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": number,
                                                "ReceivedBy": NURSE, "ReceivedAt": datetime.now(timezone.utc),
                                                "ReadBackConfirmed": True})
        [received] = pacs_a.QueryCriticalValues(request={"ApplicationNo": no}).CriticalValue
        assert received.Status == "RECEIVED" and received.Overdue

        # a sync worker holds about one connection (pool sizing in the README)
        connections = int(cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'multinode'"))
        print(f"connections to the database from 2 nodes (1 worker, 1 deliverer of 4 threads each): {connections}")
        assert connections <= 2 * (1 * 10 + 4 + 3)  # the README's pool sizing

        # stopping a node while calls go through the balancer loses none of them
        his = proxy.client("his", HIS_USER, HIS_PASSWORD)
        submitted, retried, errors = [], [], []

        def with_retries(operation, request) -> bool:
            for _ in range(5):  # what a partner does: retry with the same MessageId
                try:
                    operation(request=request)
                    return True
                except (Fault, TransportError, requests.RequestException) as exc:
                    retried.append(type(exc).__name__)
                    time.sleep(0.5)
            return False

        def submit_all(count: int):
            for _ in range(count):
                request = application_request()
                paid = {"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                        "Amount": Decimal("150.00"), "PaidAt": T0}
                if with_retries(his.SubmitApplication, request) and with_retries(his.ConfirmPayment, paid):
                    submitted.append(request["ApplicationNo"])
                else:
                    errors.append(request["ApplicationNo"])

        worker = threading.Thread(target=submit_all, args=(60,))  # 60 applications, 120 calls
        worker.start()
        wait_for(lambda: len(submitted) >= 15, 60, "calls before the stop")
        assert a.stop() == 0  # SIGTERM: gunicorn answers the calls in progress, then exits
        worker.join(timeout=180)
        assert not worker.is_alive() and errors == [] and len(submitted) == 60, (errors, retried)
        stored = cluster.sql("SELECT application_no FROM applications WHERE application_no IN ("
                             + ",".join(f"'{n}'" for n in submitted) + ")", database="multinode").split()
        assert sorted(stored) == sorted(submitted)  # each exactly once
        served = [node.log().count("POST /ws/his 200") for node in nodes]
        assert all(count > 3 for count in served), served  # the balancer used both nodes
        # every release reached the PACS once, whichever node's deliverer sent it
        expected = set(submitted)
        receiver.wait_for(lambda es: expected <= {e["application_no"] for e in es if e["outcome"] == "applied"},
                          timeout=90, what="a notification per released application")
        applied = [e for e in receiver.entries() if e["outcome"] == "applied" and e["application_no"] in expected]
        assert sorted(e["application_no"] for e in applied) == sorted(expected)  # once each
        assert {e["request"]["Application"]["Status"] for e in applied} == {"RELEASED"}
        senders = {re.search(r"pid (\d+)", e["sender"]).group(1) for e in receiver.entries()}
        assert len(senders) >= 2, senders  # both nodes' deliverers sent
        print(f"{len(applied)} notifications delivered once each by {len(senders)} deliverers")
        print(f"120 calls through nginx while a node stopped (served per node {served}): {len(retried)} retried ({set(retried) or '-'})")
    finally:
        if proxy:
            proxy.stop()
        for node in nodes:
            node.stop()
        receiver.stop()


def test_a_node_rides_out_its_database_going_away_and_coming_back(cluster, tmp_path):
    """What a PostgreSQL failover looks like from a node: while the database is gone, calls
    are the retryable Server.Unavailable and /health is 503; once it is back the same node
    answers again, without a restart, and the retried MessageId takes effect once."""
    cluster.sql("CREATE DATABASE failover")
    url = cluster.url("failover")
    shared = {"HIS_PACS_SECRET_KEY": new_key()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIS_PACS_")}
    for args, stdin in ((["migrate"], None),
                        (["systems", "add", HIS_USER, "--role", "HIS", "--password-stdin"], HIS_PASSWORD + "\n")):
        done = subprocess.run([sys.executable, "-m", "his_pacs_ws.cli", *args, "--database-url", url], cwd=ROOT,
                              input=stdin, capture_output=True, text=True, timeout=120,
                              env={**env, **shared, "HIS_PACS_DATA_DIR": str(tmp_path / "admin")})
        assert done.returncode == 0, done.stderr
    node = Node(url, tmp_path / "node", env=shared).wait_ready()
    try:
        his = _node_client(node.url, "his")
        assert his.SubmitApplication(request=application_request()).Status == "NEW"
        request = application_request()
        cluster.halt()
        try:
            assert requests.get(node.url + "/health", timeout=10).status_code == 503
            assert requests.get(node.url + "/health/live", timeout=10).status_code == 200
            with pytest.raises(Fault) as gone:
                his.SubmitApplication(request=request)
            assert fault_code(gone.value) == "Unavailable" and "Server" in gone.value.code
        finally:
            cluster.resume()
        wait_for(lambda: requests.get(node.url + "/health", timeout=10).ok, 30, "/health after the database is back")
        for _ in range(10):  # the partner's retry, same MessageId: a pooled connection from before may fail once
            try:
                first = his.SubmitApplication(request=request)
                break
            except Fault as retry:
                assert fault_code(retry) == "Unavailable"
                time.sleep(0.5)
        again = his.SubmitApplication(request=request)
        assert first.Status == again.Status == "NEW"
        count = cluster.sql(f"SELECT count(*) FROM applications WHERE application_no = '{request['ApplicationNo']}'",
                            database="failover")
        assert count.strip() == "1"
    finally:
        node.stop()
