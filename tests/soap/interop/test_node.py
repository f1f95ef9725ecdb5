"""node-soap (npm `soap`, pinned in node/package.json) walks the interop flow: clients from
the served WSDLs, PasswordDigest UsernameTokens, Chinese text, decimal money as text, lists,
the ApplicationLocked business fault and a refused password."""

from __future__ import annotations

import pytest

from tests.soap.interop.conftest import HERE, run_client

NODE = HERE / "node"


@pytest.fixture(scope="session")
def node_soap(foreign_stacks):
    """node and node_modules/soap (install.sh runs `npm ci` from the lockfile)."""
    assert (NODE / "node_modules" / "soap").is_dir()
    return NODE / "flow.js"


def test_node_soap_flow(interop_env, node_soap):
    result = run_client(["node", str(node_soap)], interop_env)
    lines = result.stdout.splitlines()
    output = f"{result.stdout}\n{result.stderr}"
    assert all(line.startswith("ok ") for line in lines), output
    expected = [
        "ok SubmitApplication NODE-A",
        "ok WSSecurity signs each call with a fresh nonce",
        "ok ConfirmPayment 171.00: RELEASED",
        "ok QueryApplications: 1 detail, patient 张三, 2 items, UnitPrice '150.50' (string)",
        "ok ReportStatus REGISTERED: Locked true",
        "ok CancelApplication fault ",
        "ok GetApplication: Timeline SUBMITTED,PAID,REGISTERED, charges 150.50,20.50, UpdatedAt ",
        "ok wrong password: ",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), f"no line starting {prefix!r}:\n{output}"
    cancel = next(line for line in lines if line.startswith("ok CancelApplication fault "))
    assert "Client.ApplicationLocked, ServiceFault Code ApplicationLocked" in cancel, output
    denied = next(line for line in lines if line.startswith("ok wrong password: "))
    assert denied.endswith("Client.AuthenticationFailed"), output
