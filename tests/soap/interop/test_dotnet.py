""".NET ASMX (Mono 6.8's wsdl.exe and System.Web.Services, Microsoft's reference source) walks
the interop flow: proxies generated from the served WSDLs without a warning and Wrapped
(``SubmitApplicationResult SubmitApplication(SubmitApplicationRequest request)``), the
UsernameToken header from docs/dotnet (a SoapHeader subclass added in GetWriterForMessage),
the ServiceFault read from SoapException.Detail, decimal scale, Chinese text, DateTime kinds
and offsets, a retry, and the *Specified flags a .NET integrator forgets."""

from __future__ import annotations

from tests.soap.interop.conftest import HERE, run_client


def test_dotnet_asmx_walks_the_flow(interop_env):
    result = run_client(["bash", str(HERE / "dotnet" / "run.sh")], interop_env)
    out = result.stdout
    print(out)  # shown with -rP: what the .NET client checked
    generated = [line for line in out.splitlines() if line.startswith("wsdl ")]
    assert "wsdl his: 12 Wrapped operations" in generated, out
    assert "wsdl pacs: 11 Wrapped operations" in generated, out
    assert "wsdl his-callback: 6 Wrapped operations" in generated, out  # server classes, push mode
    assert "wsdl pacs-callback: 3 Wrapped operations" in generated, out
    assert not any("warning" in line.lower() for line in generated), out

    checks = {line[3:] for line in out.splitlines() if line.startswith("ok ")}
    for expected in [
        "SubmitApplication Status = NEW",
        "SubmitApplication HisStatus = 待收费",
        "SubmitApplication UpdatedAt Kind = Local",
        f"SubmitApplication retry ApplicationNo = {out.split('ok flow complete for ')[-1].split()[0]}",
        "ConfirmPayment without PaidAt fault Code = SchemaValidationError",
        "ConfirmPayment Status = RELEASED",
        "ConfirmPayment retry Status = RELEASED",
        "QueryApplications ApplicationDetail count = 1",
        "QueryApplications Patient.Name = 张三",
        "QueryApplications Patient.BirthDate = 1980-05-01",
        "QueryApplications Priority = URGENT",
        "QueryApplications item count = 2",
        "QueryApplications first UnitPrice = 150.50",
        "QueryApplications TotalAmount = 171.00",
        "ReportStatus Locked = True",
        "CancelApplication ServiceFault.Code = ApplicationLocked",
        "CancelApplication ServiceFault.Retryable = False",
        "GetApplication Timeline events = SUBMITTED,PAID,REGISTERED",
        "GetApplication charge Amounts = 150.50,20.50",
        "GetApplication UpdatedAt Kind = Local",
        "PushReport FINAL ReportVersion = 1",
        "wrong password ServiceFault.Code = AuthenticationFailed",
    ]:
        assert expected in checks, f"missing 'ok {expected}':\n{out}"
    prefixed = [
        "SubmitApplication retry UpdatedAt unchanged = ",
        "ConfirmPayment without PaidAt names the element: Element 'PaidAt'",
        "QueryApplications OrderedAt is the instant sent = ",
        "CancelApplication faultcode ends in Client.ApplicationLocked: ",
        "GetApplication OrderedAt round trip = ",
        "PushReport without PositiveSpecified names the element: Element 'Positive'",
        "wrong password faultcode ends in Client.AuthenticationFailed: ",
    ]
    for prefix in prefixed:
        assert any(c.startswith(prefix) for c in checks), f"missing 'ok {prefix}...':\n{out}"
    assert out.splitlines()[-1].startswith("ok flow complete for "), out
