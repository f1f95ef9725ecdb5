"""PHP SoapClient (ext/soap, WSDL mode), the legacy-HIS stack, walks the interop flow:
served WSDLs, UsernameToken PasswordDigest on every call, Chinese text, decimals read back
as exact strings, lists, and the ApplicationLocked fault read from its ServiceFault detail."""

from __future__ import annotations

from tests.soap.interop.conftest import HERE, run_client


def test_php_soapclient_walks_the_flow(interop_env):
    result = run_client(["php", str(HERE / "php" / "flow.php")], interop_env)
    print(result.stdout)  # shown with -rP: what the PHP client checked
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("ok ")] == [str(n) for n in range(1, 8)], result.stdout

    def line(step: int) -> str:
        return next(line for line in lines if line.startswith(f"ok {step} "))

    assert "Status NEW, HisStatus 待收费" in line(1)
    assert "Status RELEASED" in line(2)
    assert "patient 张三, 2 items, UnitPrice 150.50 (string), TotalAmount 171.00" in line(3)
    assert "Locked true" in line(4)
    assert "Client.ApplicationLocked" in line(5) and "ServiceFault Code ApplicationLocked" in line(5)
    assert "Timeline SUBMITTED,PAID,REGISTERED, charge Amounts 150.50,20.50" in line(6)
    assert "Client.AuthenticationFailed" in line(7)
