import java.math.BigDecimal;
import java.net.URL;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import javax.xml.datatype.DatatypeConstants;
import javax.xml.datatype.DatatypeFactory;
import javax.xml.datatype.XMLGregorianCalendar;
import javax.xml.namespace.QName;
import javax.xml.soap.SOAPFault;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;
import javax.xml.ws.soap.SOAPFaultException;

import com.sun.xml.ws.developer.SchemaValidationFeature;

import cn.hospital.his.ApplicationItem;
import cn.hospital.his.ApplicationItemArray;
import cn.hospital.his.ApplicationState;
import cn.hospital.his.ApplicationStatus;
import cn.hospital.his.CancelApplicationRequest;
import cn.hospital.his.ChargeLine;
import cn.hospital.his.ConfirmPaymentRequest;
import cn.hospital.his.GetApplicationRequest;
import cn.hospital.his.GetApplicationResult;
import cn.hospital.his.HisService;
import cn.hospital.his.HisService_Service;
import cn.hospital.his.Patient;
import cn.hospital.his.PatientType;
import cn.hospital.his.PingRequest;
import cn.hospital.his.Sex;
import cn.hospital.his.Staff;
import cn.hospital.his.StatusEvent;
import cn.hospital.his.SubmitApplicationRequest;
import cn.hospital.his.Visit;
import cn.hospital.pacs.ApplicationDetail;
import cn.hospital.pacs.PacsService;
import cn.hospital.pacs.PacsService_Service;
import cn.hospital.pacs.PacsStatusEvent;
import cn.hospital.pacs.QueryApplicationsRequest;
import cn.hospital.pacs.QueryApplicationsResult;
import cn.hospital.pacs.ReportStatusRequest;
import cn.hospital.pacs.ReportStatusResult;

/** The interop flow (FLOW.md) through the classes wsimport generated from the served WSDLs. */
public final class Flow {
    static final String TNS = "urn:his-pacs-ws:v1";
    static final ZoneOffset CHINA = ZoneOffset.ofHours(8);

    /** Mismatch: the flow stops and the process exits 1. */
    static final class Mismatch extends RuntimeException {
        Mismatch(String message) {
            super(message);
        }
    }

    /** Remembers the faultcode of the last inbound SOAP fault: the typed exception carries only the detail. */
    static final class FaultCodeRecorder implements SOAPHandler<SOAPMessageContext> {
        QName lastFaultCode;

        @Override
        public boolean handleMessage(SOAPMessageContext context) {
            return true;
        }

        @Override
        public boolean handleFault(SOAPMessageContext context) {
            try {
                SOAPFault fault = context.getMessage().getSOAPBody().getFault();
                lastFaultCode = fault == null ? null : fault.getFaultCodeAsQName();
            } catch (javax.xml.soap.SOAPException e) {
                lastFaultCode = null;
            }
            return true;
        }

        @Override
        public void close(MessageContext context) {
        }

        @Override
        public java.util.Set<QName> getHeaders() {
            return java.util.Collections.emptySet();
        }
    }

    static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            throw new Mismatch("environment variable " + name + " is not set");
        }
        return value;
    }

    static void ok(String message) {
        System.out.println("ok " + message);
    }

    static void check(boolean condition, String message) {
        if (!condition) {
            throw new Mismatch(message);
        }
        ok(message);
    }

    static void expectEqual(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new Mismatch(what + ": expected " + expected + ", got " + actual);
        }
        ok(what + " = " + actual);
    }

    /** Money compared as BigDecimal.equals: value and scale, so 150.5 is not 150.50. */
    static void expectMoney(String expected, BigDecimal actual, String what) {
        BigDecimal want = new BigDecimal(expected);
        if (actual == null || !want.equals(actual)) {
            throw new Mismatch(what + ": expected exactly " + want + " (scale " + want.scale() + "), got "
                    + actual + (actual == null ? "" : " (scale " + actual.scale() + ")"));
        }
        ok(what + " = " + actual.toPlainString());
    }

    static void expectOffset(XMLGregorianCalendar time, String what) {
        if (time == null || time.getTimezone() == DatatypeConstants.FIELD_UNDEFINED) {
            throw new Mismatch(what + " has no UTC offset: " + time);
        }
        ok(what + " has an offset: " + time.toXMLFormat());
    }

    static XMLGregorianCalendar at(OffsetDateTime time) throws Exception {
        // OffsetDateTime.toString() drops ":00" seconds, which xs:dateTime requires
        return DatatypeFactory.newInstance().newXMLGregorianCalendar(
                time.format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
    }

    static Staff staff(String code, String name) {
        Staff staff = new Staff();
        staff.setCode(code);
        staff.setName(name);
        return staff;
    }

    static ApplicationItem item(String code, String name, String quantity, String unitPrice) {
        ApplicationItem item = new ApplicationItem();
        item.setItemCode(code);
        item.setItemName(name);
        item.setQuantity(new BigDecimal(quantity));
        item.setUnitPrice(new BigDecimal(unitPrice));
        return item;
    }

    static String unique(String prefix) {
        return prefix + UUID.randomUUID().toString().replace("-", "").substring(0, 10);
    }

    static void sign(Object port, String user, String password, FaultCodeRecorder recorder) {
        BindingProvider provider = (BindingProvider) port;
        List<Handler> chain = new ArrayList<>();
        chain.add(new UsernameTokenHandler(user, password));
        chain.add(recorder);
        provider.getBinding().setHandlerChain(chain);
    }

    static void expectEndpoint(Object port, String expected, String what) {
        Map<String, Object> context = ((BindingProvider) port).getRequestContext();
        expectEqual(expected, context.get(BindingProvider.ENDPOINT_ADDRESS_PROPERTY), what + " endpoint from the served WSDL");
    }

    static String localCode(QName faultCode) {
        return faultCode == null ? null : faultCode.getLocalPart();
    }

    public static void main(String[] args) {
        try {
            run();
        } catch (Mismatch e) {
            System.out.println("FAIL " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            System.out.println("FAIL " + e);
            e.printStackTrace(System.out);
            System.exit(1);
        }
    }

    static void run() throws Exception {
        String base = env("HIS_PACS_URL").replaceAll("/+$", "");
        String hisUser = env("HIS_PACS_HIS_USER");
        String hisPassword = env("HIS_PACS_HIS_PASSWORD");
        String pacsUser = env("HIS_PACS_PACS_USER");
        String pacsPassword = env("HIS_PACS_PACS_PASSWORD");

        HisService_Service hisService = new HisService_Service(new URL(base + "/ws/his?wsdl"), new QName(TNS, "HisService"));
        PacsService_Service pacsService = new PacsService_Service(new URL(base + "/ws/pacs?wsdl"), new QName(TNS, "PacsService"));
        // Both directions are validated against the served schema: a response the WSDL does
        // not describe (order, facets, missing required elements) fails the flow.
        HisService his = hisService.getHisService(new SchemaValidationFeature());
        PacsService pacs = pacsService.getPacsService(new SchemaValidationFeature());
        FaultCodeRecorder hisFaults = new FaultCodeRecorder();
        FaultCodeRecorder pacsFaults = new FaultCodeRecorder();
        sign(his, hisUser, hisPassword, hisFaults);
        sign(pacs, pacsUser, pacsPassword, pacsFaults);
        expectEndpoint(his, base + "/ws/his", "HisService");
        expectEndpoint(pacs, base + "/ws/pacs", "PacsService");

        OffsetDateTime now = OffsetDateTime.now(CHINA).truncatedTo(ChronoUnit.SECONDS);
        String applicationNo = unique("JA");
        Staff doctor = staff("D001", "王医生");

        // 1. SubmitApplication
        SubmitApplicationRequest submit = new SubmitApplicationRequest();
        submit.setMessageId(unique("JM"));
        submit.setApplicationNo(applicationNo);
        Patient patient = new Patient();
        patient.setPatientId(unique("JP"));
        patient.setName("张三");
        patient.setSex(Sex.M);
        submit.setPatient(patient);
        Visit visit = new Visit();
        visit.setVisitNo(unique("JV"));
        visit.setPatientType(PatientType.OUTPATIENT);
        submit.setVisit(visit);
        submit.setOrderingDoctor(doctor);
        submit.setOrderingDepartmentCode("NK");
        submit.setOrderingDepartmentName("内科");
        submit.setExecutingDepartmentCode("CT");
        submit.setExecutingDepartmentName("CT室");
        submit.setOrderedAt(at(now.minusMinutes(10)));
        ApplicationItemArray items = new ApplicationItemArray();
        ApplicationItem ct = item("CT001", "头颅CT平扫", "1", "150.50");
        ct.setModality("CT");
        ct.setBodyPart("头颅");
        items.getApplicationItem().add(ct);
        items.getApplicationItem().add(item("FILM", "胶片", "2", "10.25"));
        submit.setItems(items);
        ApplicationState submitted = his.submitApplication(submit).getApplication();
        expectEqual(ApplicationStatus.NEW, submitted.getStatus(), "SubmitApplication Status");
        expectEqual("待收费", submitted.getHisStatus(), "SubmitApplication HisStatus");
        expectOffset(submitted.getUpdatedAt(), "SubmitApplication UpdatedAt");

        // 2. ConfirmPayment
        ConfirmPaymentRequest payment = new ConfirmPaymentRequest();
        payment.setMessageId(unique("JM"));
        payment.setApplicationNo(applicationNo);
        payment.setAmount(new BigDecimal("171.00"));
        payment.setPaidAt(at(now.minusMinutes(5)));
        payment.setInvoiceNo(unique("JI"));
        ApplicationState paid = his.confirmPayment(payment).getApplication();
        expectEqual(ApplicationStatus.RELEASED, paid.getStatus(), "ConfirmPayment Status");

        // 3. PACS QueryApplications
        QueryApplicationsRequest query = new QueryApplicationsRequest();
        query.setApplicationNo(applicationNo);
        QueryApplicationsResult found = pacs.queryApplications(query);
        check(found.getApplications() != null, "QueryApplications returned an Applications list");
        List<ApplicationDetail> details = found.getApplications().getApplicationDetail();
        expectEqual(1, details.size(), "QueryApplications ApplicationDetail count");
        ApplicationDetail detail = details.get(0);
        expectEqual(applicationNo, detail.getApplicationNo(), "QueryApplications ApplicationNo");
        expectEqual("张三", detail.getPatient().getName(), "QueryApplications Patient.Name");
        List<cn.hospital.pacs.ApplicationItem> detailItems = detail.getItems().getApplicationItem();
        expectEqual(2, detailItems.size(), "QueryApplications item count");
        expectEqual("头颅CT平扫", detailItems.get(0).getItemName(), "QueryApplications first ItemName");
        expectMoney("150.50", detailItems.get(0).getUnitPrice(), "QueryApplications first UnitPrice");
        expectMoney("10.25", detailItems.get(1).getUnitPrice(), "QueryApplications second UnitPrice");
        expectMoney("171.00", detail.getTotalAmount(), "QueryApplications TotalAmount");
        expectOffset(detail.getOrderedAt(), "QueryApplications OrderedAt");

        // 4. PACS ReportStatus REGISTERED
        ReportStatusRequest registered = new ReportStatusRequest();
        registered.setMessageId(unique("JM"));
        registered.setApplicationNo(applicationNo);
        registered.setStatus(PacsStatusEvent.REGISTERED);
        registered.setOccurredAt(at(now.minusMinutes(1)));
        cn.hospital.pacs.Staff clerk = new cn.hospital.pacs.Staff();
        clerk.setCode("R001");
        clerk.setName("登记员");
        registered.setOperator(clerk);
        String accessionNo = unique("JX");
        registered.setAccessionNo(accessionNo);
        ReportStatusResult status = pacs.reportStatus(registered);
        expectEqual(true, status.isApplied(), "ReportStatus Applied");
        expectEqual(cn.hospital.pacs.ApplicationStatus.REGISTERED, status.getApplication().getStatus(), "ReportStatus Status");
        expectEqual(true, status.getApplication().isLocked(), "ReportStatus Locked");
        expectEqual(accessionNo, status.getApplication().getAccessionNo(), "ReportStatus AccessionNo");

        // 5. CancelApplication on a locked application: the typed fault
        CancelApplicationRequest cancel = new CancelApplicationRequest();
        cancel.setMessageId(unique("JM"));
        cancel.setApplicationNo(applicationNo);
        cancel.setReason("患者要求取消");
        cancel.setOperator(doctor);
        cancel.setCancelledAt(at(now));
        hisFaults.lastFaultCode = null;
        try {
            his.cancelApplication(cancel);
            throw new Mismatch("CancelApplication on a locked application did not fault");
        } catch (cn.hospital.his.ServiceFault_Exception e) {
            ok("CancelApplication raised the typed " + e.getClass().getSimpleName() + ": " + e.getMessage());
            check(e.getFaultInfo() != null, "ServiceFault_Exception.getFaultInfo() is the ServiceFault detail");
            expectEqual("ApplicationLocked", e.getFaultInfo().getCode(), "CancelApplication getFaultInfo().getCode()");
            expectEqual(false, e.getFaultInfo().isRetryable(), "CancelApplication getFaultInfo().isRetryable()");
            String faultCode = localCode(hisFaults.lastFaultCode);
            check(faultCode != null && faultCode.endsWith("Client.ApplicationLocked"),
                    "CancelApplication faultcode " + hisFaults.lastFaultCode + " ends in Client.ApplicationLocked");
        }

        // 6. GetApplication
        GetApplicationRequest get = new GetApplicationRequest();
        get.setApplicationNo(applicationNo);
        GetApplicationResult application = his.getApplication(get);
        check(application.getTimeline() != null, "GetApplication returned a Timeline");
        List<StatusEvent> timeline = application.getTimeline().getStatusEvent();
        List<String> events = new ArrayList<>();
        for (StatusEvent event : timeline) {
            events.add(event.getEvent());
        }
        expectEqual(List.of("SUBMITTED", "PAID", "REGISTERED"), events, "GetApplication Timeline events");
        expectEqual(ApplicationStatus.REGISTERED, timeline.get(2).getStatus(), "GetApplication last StatusEvent Status");
        expectOffset(timeline.get(0).getOccurredAt(), "GetApplication first StatusEvent OccurredAt");
        check(application.getCharges() != null, "GetApplication returned Charges");
        List<ChargeLine> charges = application.getCharges().getChargeLine();
        expectEqual(2, charges.size(), "GetApplication charge line count");
        expectMoney("150.50", charges.get(0).getAmount(), "GetApplication first charge Amount");
        expectMoney("20.50", charges.get(1).getAmount(), "GetApplication second charge Amount");
        expectEqual(ApplicationStatus.REGISTERED, application.getApplication().getStatus(), "GetApplication Status");
        expectEqual("执行中", application.getApplication().getHisStatus(), "GetApplication HisStatus");
        expectOffset(application.getApplication().getUpdatedAt(), "GetApplication UpdatedAt");

        // 7. A wrong password
        HisService intruder = hisService.getHisService(new SchemaValidationFeature());
        FaultCodeRecorder intruderFaults = new FaultCodeRecorder();
        sign(intruder, hisUser, hisPassword + "-wrong", intruderFaults);
        try {
            intruder.ping(new PingRequest());
            throw new Mismatch("a call with a wrong password did not fault");
        } catch (cn.hospital.his.ServiceFault_Exception e) {
            ok("wrong password raised the typed " + e.getClass().getSimpleName() + ": " + e.getMessage());
            expectEqual("AuthenticationFailed", e.getFaultInfo().getCode(), "wrong password getFaultInfo().getCode()");
            String faultCode = localCode(intruderFaults.lastFaultCode);
            check(faultCode != null && faultCode.endsWith("Client.AuthenticationFailed"),
                    "wrong password faultcode " + intruderFaults.lastFaultCode + " ends in Client.AuthenticationFailed");
        } catch (SOAPFaultException e) {
            QName faultCode = e.getFault().getFaultCodeAsQName();
            throw new Mismatch("wrong password gave an untyped SOAPFaultException (faultcode " + faultCode
                    + ", no ServiceFault detail bound): " + e.getMessage());
        }

        System.out.println("ok flow complete for " + applicationNo);
    }
}
