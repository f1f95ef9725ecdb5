"""Java JAX-WS (Debian's wsimport 2.3 and the JAX-WS RI on JDK 17), the strictest stack, walks
the interop flow: classes generated from the served WSDLs without a single wsimport warning,
schema validation of both directions, UsernameToken PasswordDigest from a SOAPHandler,
BigDecimal money compared with its scale, XMLGregorianCalendar offsets, generated list
getters, and the ApplicationLocked fault caught as the generated ServiceFault_Exception."""

from __future__ import annotations

from tests.soap.interop.conftest import HERE, run_client


def test_java_jaxws_walks_the_flow(interop_env):
    result = run_client(["bash", str(HERE / "java" / "run.sh")], interop_env)
    out = result.stdout
    wsimport = [line for line in out.splitlines() if line.startswith("wsimport ")]
    assert any("Generating code" in line for line in wsimport if line.startswith("wsimport his:")), out
    assert any("Generating code" in line for line in wsimport if line.startswith("wsimport pacs:")), out
    assert not any("warning" in line.lower() for line in wsimport), out
    assert "WARNING" not in result.stderr, result.stderr

    checks = {line[3:] for line in out.splitlines() if line.startswith("ok ")}
    for expected in [
        "SubmitApplication Status = NEW",
        "SubmitApplication HisStatus = 待收费",
        "ConfirmPayment Status = RELEASED",
        "QueryApplications ApplicationDetail count = 1",
        "QueryApplications Patient.Name = 张三",
        "QueryApplications item count = 2",
        "QueryApplications first UnitPrice = 150.50",
        "QueryApplications TotalAmount = 171.00",
        "ReportStatus Locked = true",
        "CancelApplication getFaultInfo().getCode() = ApplicationLocked",
        "GetApplication Timeline events = [SUBMITTED, PAID, REGISTERED]",
        "GetApplication first charge Amount = 150.50",
        "GetApplication second charge Amount = 20.50",
        "wrong password getFaultInfo().getCode() = AuthenticationFailed",
    ]:
        assert expected in checks, f"missing 'ok {expected}':\n{out}"
    assert any(c.startswith("CancelApplication raised the typed ServiceFault_Exception") for c in checks), out
    assert any(c.startswith("CancelApplication faultcode") and c.endswith("ends in Client.ApplicationLocked")
               for c in checks), out
    assert any(c.startswith("GetApplication UpdatedAt has an offset: ") for c in checks), out
    assert any(c.startswith("wrong password faultcode") and c.endswith("ends in Client.AuthenticationFailed")
               for c in checks), out
    assert out.splitlines()[-1].startswith("ok flow complete for "), out
