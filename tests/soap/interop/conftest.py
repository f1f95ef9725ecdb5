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


INSTALL = f"sudo bash {HERE.relative_to(HERE.parents[2])}/install.sh"


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.interop)


def skip_reason(missing: str | None, *, ci: bool, root: bool) -> str | None:
    """Why the stacks' tests skip, or None when install.sh is to run (and a stack it cannot
    install fails its test): only a developer's machine without root skips."""
    if missing is None or ci or root:
        return None
    return f"foreign SOAP stacks missing ({missing}); install them with `{INSTALL}`"


@pytest.fixture(scope="session")
def foreign_stacks():
    """PHP with soap, wsimport and a JDK, node with node_modules/soap, Mono's wsdl and mcs:
    installed by install.sh where missing."""
    check = subprocess.run(["bash", str(HERE / "install.sh"), "--check"], capture_output=True, text=True)
    missing = None if check.returncode == 0 else (check.stdout.strip() or "node_modules")
    reason = skip_reason(missing, ci=bool(os.environ.get("CI")), root=os.geteuid() == 0)
    if reason:
        pytest.skip(reason)
    subprocess.run(["bash", str(HERE / "install.sh")], check=True)


@pytest.fixture(scope="package")
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
