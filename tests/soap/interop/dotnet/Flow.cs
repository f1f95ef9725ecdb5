// The interop flow (FLOW.md) through the ASMX proxies wsdl.exe generated from the served WSDLs,
// signed by docs/dotnet's UsernameTokenHeader, with the checks a .NET HIS integrator makes:
// decimal scale, Chinese text, offsets and DateTime kinds, the typed fault from the detail,
// a retry with the same MessageId, and the fields whose *Specified flag is easy to forget.
using System;
using System.Globalization;
using System.Linq;
using System.Web.Services.Protocols;
using His;
using Pacs;

static class Flow
{
    static int checks;

    static void Ok(string what, object actual, object expected)
    {
        string a = Convert.ToString(actual, CultureInfo.InvariantCulture);
        string e = Convert.ToString(expected, CultureInfo.InvariantCulture);
        if (a != e) throw new Exception("mismatch: " + what + " = " + a + ", expected " + e);
        Console.WriteLine("ok " + what + " = " + a);
        checks++;
    }

    static void Ok(string what, bool condition, string detail)
    {
        if (!condition) throw new Exception("mismatch: " + what + " (" + detail + ")");
        Console.WriteLine("ok " + what + ": " + detail);
        checks++;
    }

    static string Env(string name)
    {
        string value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrEmpty(value)) throw new Exception(name + " is not set");
        return value;
    }

    static His.Staff HisStaff(string code, string name)
    {
        His.Staff s = new His.Staff();
        s.Code = code;
        s.Name = name;
        return s;
    }

    static Pacs.Staff PacsStaff(string code, string name)
    {
        Pacs.Staff s = new Pacs.Staff();
        s.Code = code;
        s.Name = name;
        return s;
    }

    static His.ApplicationItem Item(string code, string name, decimal quantity, decimal price)
    {
        His.ApplicationItem item = new His.ApplicationItem();
        item.ItemCode = code;
        item.ItemName = name;
        item.Quantity = quantity;
        item.UnitPrice = price;
        return item;
    }

    static SoapException Expect(Action call)
    {
        try
        {
            call();
        }
        catch (SoapException e)
        {
            return e;
        }
        throw new Exception("a SOAP fault was expected");
    }

    static int Main()
    {
        try
        {
            Run();
            return 0;
        }
        catch (Exception e)
        {
            Console.WriteLine("FAILED " + e.GetType().Name + ": " + e.Message);
            return 1;
        }
    }

    static void Run()
    {
        string url = Env("HIS_PACS_URL").TrimEnd('/');
        HisService his = new HisService();
        his.Url = url + "/ws/his";
        his.WsseUser = Env("HIS_PACS_HIS_USER");
        his.WssePassword = Env("HIS_PACS_HIS_PASSWORD");
        PacsService pacs = new PacsService();
        pacs.Url = url + "/ws/pacs";
        pacs.WsseUser = Env("HIS_PACS_PACS_USER");
        pacs.WssePassword = Env("HIS_PACS_PACS_PASSWORD");
        string suffix = Guid.NewGuid().ToString("N").Substring(0, 10);
        string no = "IOP-NET-" + suffix;

        // 1. SubmitApplication. OrderedAt is a UTC DateTime (sent with Z); URGENT needs no
        // PrioritySpecified (the WSDL gives Priority a default).
        SubmitApplicationRequest submit = new SubmitApplicationRequest();
        submit.MessageId = "M-NET-" + suffix;
        submit.ApplicationNo = no;
        submit.Patient = new His.Patient();
        submit.Patient.PatientId = "P-NET-" + suffix;
        submit.Patient.Name = "张三";
        submit.Patient.Sex = His.Sex.M;
        submit.Patient.BirthDate = new DateTime(1980, 5, 1);
        submit.Patient.BirthDateSpecified = true;
        submit.Visit = new His.Visit();
        submit.Visit.VisitNo = "V-NET-" + suffix;
        submit.Visit.PatientType = His.PatientType.OUTPATIENT;
        submit.OrderingDoctor = HisStaff("D001", "王医生");
        submit.OrderingDepartmentCode = "NK";
        submit.OrderingDepartmentName = "内科";
        submit.ExecutingDepartmentCode = "CT";
        submit.ExecutingDepartmentName = "CT室";
        DateTime orderedUtc = new DateTime(2026, 11, 26, 1, 0, 0, DateTimeKind.Utc);  // 09:00 in Beijing
        submit.OrderedAt = orderedUtc;
        submit.Priority = His.Priority.URGENT;
        submit.Items = new His.ApplicationItem[] {
            Item("CT001", "头颅CT平扫", 1m, 150.50m), Item("FILM", "胶片", 2m, 10.25m) };
        SubmitApplicationResult submitted = his.SubmitApplication(submit);
        Ok("SubmitApplication Status", submitted.Application.Status, His.ApplicationStatus.NEW);
        Ok("SubmitApplication HisStatus", submitted.Application.HisStatus, "待收费");
        Ok("SubmitApplication UpdatedAt Kind", submitted.Application.UpdatedAt.Kind, DateTimeKind.Local);

        // A retry of the same request (a timeout on the HIS side): the original answer.
        SubmitApplicationResult retried = his.SubmitApplication(submit);
        Ok("SubmitApplication retry ApplicationNo", retried.Application.ApplicationNo, no);
        Ok("SubmitApplication retry UpdatedAt unchanged", retried.Application.UpdatedAt, submitted.Application.UpdatedAt);

        // A required DateTime never set goes out as 0001-01-01T00:00:00: refused, by name.
        ConfirmPaymentRequest unset = new ConfirmPaymentRequest();
        unset.MessageId = "M-NET-UNSET-" + suffix;
        unset.ApplicationNo = no;
        unset.Amount = 171.00m;
        SoapException minValue = Expect(delegate { his.ConfirmPayment(unset); });
        Ok("ConfirmPayment without PaidAt fault Code", HisPacsWs.ServiceFault.From(minValue).Code, "SchemaValidationError");
        Ok("ConfirmPayment without PaidAt names the element", minValue.Message.StartsWith("Element 'PaidAt'"), minValue.Message);

        // 2. ConfirmPayment, PaidAt a Local DateTime (sent with this machine's offset), and its retry.
        ConfirmPaymentRequest pay = new ConfirmPaymentRequest();
        pay.MessageId = "M-NET-PAY-" + suffix;
        pay.ApplicationNo = no;
        pay.Amount = 171.00m;
        pay.PaidAt = orderedUtc.AddMinutes(10).ToLocalTime();
        Ok("ConfirmPayment Status", his.ConfirmPayment(pay).Application.Status, His.ApplicationStatus.RELEASED);
        Ok("ConfirmPayment retry Status", his.ConfirmPayment(pay).Application.Status, His.ApplicationStatus.RELEASED);

        // 3. QueryApplications
        QueryApplicationsRequest query = new QueryApplicationsRequest();
        query.ApplicationNo = no;
        Pacs.ApplicationDetail[] found = pacs.QueryApplications(query).Applications;
        Ok("QueryApplications ApplicationDetail count", found.Length, 1);
        Pacs.ApplicationDetail detail = found[0];
        Ok("QueryApplications Patient.Name", detail.Patient.Name, "张三");
        Ok("QueryApplications Patient.BirthDate", detail.Patient.BirthDate.ToString("yyyy-MM-dd"), "1980-05-01");
        Ok("QueryApplications Priority", detail.Priority, Pacs.Priority.URGENT);
        Ok("QueryApplications item count", detail.Items.Length, 2);
        Ok("QueryApplications first UnitPrice", detail.Items[0].UnitPrice.ToString(CultureInfo.InvariantCulture), "150.50");
        Ok("QueryApplications TotalAmount", detail.TotalAmount.ToString(CultureInfo.InvariantCulture), "171.00");
        Ok("QueryApplications OrderedAt is the instant sent", detail.OrderedAt.ToUniversalTime(), orderedUtc);

        // 4. ReportStatus REGISTERED
        ReportStatusRequest register = new ReportStatusRequest();
        register.MessageId = "M-NET-REG-" + suffix;
        register.ApplicationNo = no;
        register.Status = PacsStatusEvent.REGISTERED;
        register.OccurredAt = DateTime.Now;
        register.Operator = PacsStaff("R001", "登记员");
        register.AccessionNo = "ACC-NET-" + suffix;
        Ok("ReportStatus Locked", pacs.ReportStatus(register).Application.Locked, true);

        // 5. CancelApplication: ASMX ignores wsdl:fault, the ServiceFault is in the detail.
        CancelApplicationRequest cancel = new CancelApplicationRequest();
        cancel.MessageId = "M-NET-CANCEL-" + suffix;
        cancel.ApplicationNo = no;
        cancel.Reason = "患者要求取消";
        cancel.Operator = HisStaff("D001", "王医生");
        cancel.CancelledAt = DateTime.Now;
        SoapException locked = Expect(delegate { his.CancelApplication(cancel); });
        Ok("CancelApplication faultcode ends in Client.ApplicationLocked", locked.Code.Name.EndsWith("Client.ApplicationLocked"), locked.Code.Name);
        HisPacsWs.ServiceFault fault = HisPacsWs.ServiceFault.From(locked);
        Ok("CancelApplication ServiceFault.Code", fault.Code, "ApplicationLocked");
        Ok("CancelApplication ServiceFault.Retryable", fault.Retryable, false);

        // 6. GetApplication
        GetApplicationRequest get = new GetApplicationRequest();
        get.ApplicationNo = no;
        GetApplicationResult app = his.GetApplication(get);
        Ok("GetApplication Timeline events", string.Join(",", app.Timeline.Select(e => e.Event).ToArray()), "SUBMITTED,PAID,REGISTERED");
        Ok("GetApplication charge Amounts", string.Join(",", app.Charges.Select(c => c.Amount.ToString(CultureInfo.InvariantCulture)).ToArray()), "150.50,20.50");
        Ok("GetApplication UpdatedAt Kind", app.Application.UpdatedAt.Kind, DateTimeKind.Local);
        Ok("GetApplication OrderedAt round trip", app.Application.OrderedAt.ToUniversalTime(), orderedUtc);

        // A FINAL report whose Positive was set but PositiveSpecified forgotten: refused, by
        // name, instead of a report that is neither 阳性 nor 阴性.
        PushReportRequest report = new PushReportRequest();
        report.MessageId = "M-NET-RPT-" + suffix;
        report.ApplicationNo = no;
        report.ReportNo = "R-NET-" + suffix;
        report.ResultStatus = Pacs.ResultStatus.FINAL;
        report.ReportingDoctor = PacsStaff("RAD01", "赵医生");
        report.ReportedAt = DateTime.Now;
        report.VerifyingDoctor = PacsStaff("RAD09", "钱主任");
        report.VerifiedAt = DateTime.Now;
        report.VerifiedAtSpecified = true;
        report.Impression = "考虑脑梗死";
        report.Positive = true;
        SoapException unflagged = Expect(delegate { pacs.PushReport(report); });
        Ok("PushReport without PositiveSpecified names the element", unflagged.Message.StartsWith("Element 'Positive'"), unflagged.Message);
        report.MessageId = "M-NET-RPT2-" + suffix;
        report.PositiveSpecified = true;
        Ok("PushReport FINAL ReportVersion", pacs.PushReport(report).ReportVersion, 1);

        // 7. A wrong password
        his.WssePassword = "wrong-password";
        SoapException refused = Expect(delegate { his.Ping(new His.PingRequest()); });
        Ok("wrong password faultcode ends in Client.AuthenticationFailed", refused.Code.Name.EndsWith("Client.AuthenticationFailed"), refused.Code.Name);
        Ok("wrong password ServiceFault.Code", HisPacsWs.ServiceFault.From(refused).Code, "AuthenticationFailed");

        Console.WriteLine("ok flow complete for " + no + " (" + checks + " checks)");
    }
}
