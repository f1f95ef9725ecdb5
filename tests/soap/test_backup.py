"""The backup and restore of docs/OPERATIONS.md, done: a server's database dumped, restored
into a fresh embedded data dir with the key beside it, and served from there."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.soap.conftest import application_request, client
from tests.soap.test_traps import _postmaster_running, _serve, _wait_healthy, cli, one_line
from tests.soap.conftest import free_port
from tests.pgcluster import scratch_dir, wait_for


def test_backup_restore_and_serve_from_the_restore(server, database_url, his, tmp_path):
    request = application_request()
    his.SubmitApplication(request=request)
    archive = tmp_path / "his-pacs.dump"
    dumped = cli("backup", "--database-url", database_url, "--out", str(archive))
    assert dumped.returncode == 0, dumped.stderr
    assert "does not hold the secret key" in dumped.stderr and archive.stat().st_size > 10_000

    restored = scratch_dir() / "restored"
    done = cli("restore", str(archive), "--data-dir", str(restored))
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    # the partners' passwords need their key: the restore says so until it is in place
    assert "before serving: no secret key" in done.stderr and "holds the passwords of" in done.stderr
    again = one_line(cli("restore", str(archive), "--data-dir", str(restored)))
    assert "is not empty" in again  # never over a database
    shutil.copy(Path(server.env["HIS_PACS_DATA_DIR"]) / "secret.key", restored / "secret.key")

    port, log_path = free_port(), tmp_path / "serve.log"
    process = _serve(restored, port, log_path)
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}", log_path)
        back = client(f"http://127.0.0.1:{port}", "his").GetApplication(
            request={"ApplicationNo": request["ApplicationNo"]}).Application
        assert back.Status == "NEW" and back.Patient.PatientId == request["Patient"]["PatientId"]
    finally:
        process.terminate()
        process.wait(timeout=60)
    wait_for(lambda: not _postmaster_running(restored), 30, "the restored embedded PostgreSQL to stop")
    shutil.rmtree(restored.parent, ignore_errors=True)


def test_backup_of_a_missing_embedded_database_is_refused(tmp_path):
    message = one_line(cli("backup", "--out", str(tmp_path / "x.dump"), cwd=tmp_path))
    assert "no database in" in message and not (tmp_path / "x.dump").exists()
