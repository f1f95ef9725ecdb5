"""Interop tier: foreign SOAP stacks, each loading the served WSDL (or generating a client
from it), walk a flow against the test server with a UsernameToken, Chinese text,
decimal money, lists, and a business fault whose detail Code they read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.soap.conftest import HIS_PASSWORD, HIS_USER, PACS_PASSWORD, PACS_USER

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def foreign_stacks():
    """PHP with soap, wsimport and a JDK, node with node_modules/soap: installed by
    install.sh where missing. A stack that cannot be installed fails its test."""
    subprocess.run(["bash", str(HERE / "install.sh")], check=True)


@pytest.fixture(scope="session")
def interop_env(base_url, foreign_stacks):
    """What every foreign client reads: where the services are and whose credentials."""
    return {
        **os.environ,
        "HIS_PACS_URL": base_url,
        "HIS_PACS_HIS_USER": HIS_USER, "HIS_PACS_HIS_PASSWORD": HIS_PASSWORD,
        "HIS_PACS_PACS_USER": PACS_USER, "HIS_PACS_PACS_PASSWORD": PACS_PASSWORD,
    }


def run_client(args, env, *, cwd=HERE, timeout=300) -> subprocess.CompletedProcess:
    """Run a foreign client; its stdout lists what it checked, and it exits non-zero on any
    mismatch. The output is kept in the assertion message."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result
