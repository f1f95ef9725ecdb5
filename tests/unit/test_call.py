"""The per-call object: what each stage notes ends up in the call record's row."""

from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.soap.call import ENVIRON_KEY, Call


def test_a_call_travels_in_the_environ_under_one_key():
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    call = Call.start(environ, "HIS")
    assert environ[ENVIRON_KEY] is call and Call.of(environ) is call
    assert call.remote_addr == "127.0.0.1"


def test_a_refused_token_is_recorded_under_the_name_it_claimed():
    call = Call(service="HIS", claimed="his-main")
    call.fault_code = "AuthenticationFailed"
    row = call.record(b"<request/>", b"<fault/>")
    assert (row["caller"], row["outcome"], row["fault_code"]) == ("his-main", "FAULT", "AuthenticationFailed")


def test_the_subject_comes_from_the_result_when_the_request_does_not_name_it():
    call = Call(service="HIS", caller=Caller("his-main", Role.HIS))
    call.note_request({"message_id": "m1", "critical_value_no": "CV1"})
    call.note_subject({"critical_value": {"application_no": "A1", "patient_id": "P1"}})
    row = call.record(None, b"")
    assert (row["message_id"], row["application_no"], row["patient_id"], row["outcome"]) == ("m1", "A1", "P1", "OK")


def test_facts_read_from_a_refused_request_fill_the_record():
    call = Call(service="PACS")
    call.note_facts({"operation": "ReportStatus", "message_id": "m2"})
    assert (call.operation, call.message_id, call.application_no) == ("ReportStatus", "m2", None)
