"""Reports and their versions, and what they do to the application."""

from __future__ import annotations

import pytest

from his_pacs_ws.domain import errors
from tests.integration.conftest import unique


def latest(hospital, no):
    return {r["report_no"]: r for r in hospital.get(no)["reports"]}


def test_preliminary_then_final(hospital):
    no = hospital.released()
    hospital.pacs(no, "EXAMINED")
    first = hospital.push(no, "PRELIMINARY")
    assert (first["application"]["status"], first["report_version"]) == ("REPORTED", 1)
    final = hospital.push(no, "FINAL", findings="左侧额叶低密度影，边界清")
    assert (final["application"]["status"], final["application"]["his_status"], final["report_version"]) == (
        "VERIFIED", "已完成", 2)
    report = latest(hospital, no)[f"R-{no}"]
    assert (report["version"], report["result_status"], report["verifying_doctor"]["name"]) == (2, "FINAL", "钱主任")


def test_final_needs_the_verifying_doctor(hospital):
    no = hospital.released()
    with pytest.raises(errors.SchemaValidationError):
        hospital.push(no, "FINAL", verifying_doctor=None, verified_at=None)


def test_a_correction_is_a_new_version_and_keeps_the_history(hospital):
    no = hospital.released()
    hospital.push(no, "FINAL")
    corrected = hospital.push(no, "CORRECTED", impression="考虑脑梗死（亚急性期）")
    assert (corrected["report_version"], corrected["application"]["status"]) == (2, "VERIFIED")
    [report] = hospital.reports(application_no=no)["reports"]
    assert (report["version"], report["result_status"], report["impression"]) == (2, "CORRECTED", "考虑脑梗死（亚急性期）")


def test_correction_before_a_final_is_refused(hospital):
    no = hospital.released()
    hospital.push(no, "PRELIMINARY")
    with pytest.raises(errors.InvalidTransition):
        hospital.push(no, "CORRECTED")


def test_a_second_final_must_be_a_correction(hospital):
    no = hospital.released()
    hospital.push(no, "FINAL")
    with pytest.raises(errors.InvalidTransition):
        hospital.push(no, "FINAL", impression="改了")


def test_withdrawn_goes_back_to_examined(hospital):
    """取消审核: the chief takes the final back for revision."""
    no = hospital.released()
    hospital.push(no, "FINAL")
    withdrawn = hospital.push(no, "WITHDRAWN", minutes=90)
    assert withdrawn["application"]["status"] == "EXAMINED"
    assert hospital.reports(application_no=no)["reports"] == []
    again = hospital.push(no, "FINAL", minutes=100, impression="修订后")
    assert (again["application"]["status"], again["report_version"]) == ("VERIFIED", 3)


def test_the_same_final_sent_again_after_a_withdrawal_is_a_new_version(hospital):
    no = hospital.released()
    hospital.push(no, "FINAL")
    hospital.push(no, "WITHDRAWN", minutes=90)
    again = hospital.push(no, "FINAL")  # unchanged, the same content as version 1
    assert (again["applied"], again["report_version"], again["application"]["status"]) == (True, 3, "VERIFIED")
    retry = hospital.push(no, "FINAL")
    assert (retry["applied"], retry["report_version"]) == (False, 3)


def test_nothing_to_withdraw(hospital):
    no = hospital.released()
    with pytest.raises(errors.InvalidTransition):
        hospital.push(no, "WITHDRAWN")


def test_a_late_preliminary_cannot_hide_the_final(hospital):
    no = hospital.released()
    hospital.push(no, "FINAL", minutes=70)
    late = hospital.push(no, "PRELIMINARY", minutes=60, findings="初稿")
    assert late["applied"] is False
    assert latest(hospital, no)[f"R-{no}"]["result_status"] == "FINAL"
    events = [(e["event"], e["applied"]) for e in hospital.get(no)["timeline"]]
    assert events[-1] == ("REPORT_PRELIMINARY", False)


def test_the_same_report_pushed_again_makes_no_new_version(hospital):
    no = hospital.released()
    hospital.push(no, "PRELIMINARY")
    first = hospital.push(no, "FINAL")
    again = hospital.push(no, "FINAL")  # new MessageId, same content
    assert again["report_version"] == first["report_version"] == 2
    assert [e["event"] for e in hospital.get(no)["timeline"]].count("REPORT_FINAL") == 1


def test_report_for_an_application_pacs_cannot_see(hospital):
    no = hospital.submit()
    with pytest.raises(errors.ApplicationNotFound):
        hospital.push(no, "PRELIMINARY")
    assert hospital.get(no)["reports"] == []


def test_report_on_a_cancelled_application(hospital):
    no = hospital.released()
    hospital.cancel(no)
    with pytest.raises(errors.InvalidTransition):
        hospital.push(no, "PRELIMINARY")


def test_report_number_belongs_to_one_application(hospital):
    a, b = hospital.released(), hospital.released()
    report_no = unique("RPT")
    hospital.push(a, "PRELIMINARY", report_no=report_no)
    with pytest.raises(errors.InvalidTransition):
        hospital.push(b, "PRELIMINARY", report_no=report_no)


def test_a_report_straight_from_released_implies_registration_charges(register_charging):
    h = register_charging
    no = h.submit(patient_type="INPATIENT", executing="MR")
    h.send(no)
    h.push(no, "PRELIMINARY")
    assert [c["trigger"] for c in h.charges(application_no=no)["charges"]] == ["PACS_REGISTER"]
    assert h.get(no)["application"]["locked"] is True


def test_images_and_links_reach_the_clinician(hospital):
    no = hospital.released()
    hospital.push(no, "FINAL", study_instance_uid="1.2.840.113619.2.55.3", viewer_url="https://pacs/viewer?acc=1",
                  image_urls=["https://pacs/wado/1.jpg", "https://pacs/wado/2.jpg"], pdf_url="https://pacs/r.pdf",
                  positive=True)
    [report] = hospital.reports(application_no=no)["reports"]
    assert report["image_urls"] == ["https://pacs/wado/1.jpg", "https://pacs/wado/2.jpg"]
    assert (report["positive"], report["study_instance_uid"]) == (True, "1.2.840.113619.2.55.3")


def test_a_returning_patient_sees_earlier_reports(hospital):
    request = hospital.submit_request()
    patient = request["patient"]
    earlier = hospital.released(patient=patient)
    hospital.push(earlier, "FINAL", report_no=unique("R"), minutes=10)
    today = hospital.released(patient=patient)
    hospital.push(today, "PRELIMINARY", report_no=unique("R"), minutes=600)
    with_prior = hospital.reports(application_no=today)["reports"]
    assert [r["application_no"] for r in with_prior] == [earlier]  # today's is preliminary
    both = hospital.reports(application_no=today, include_preliminary=True)["reports"]
    assert [r["application_no"] for r in both] == [today, earlier]  # newest first
    assert hospital.reports(application_no=today, include_prior=False, include_preliminary=True)[
        "reports"][0]["application_no"] == today
    by_patient = hospital.reports(patient_id=patient["patient_id"])["reports"]
    assert [r["application_no"] for r in by_patient] == [earlier]


def test_query_reports_needs_a_key(hospital):
    with pytest.raises(errors.SchemaValidationError):
        hospital.reports()
    with pytest.raises(errors.ApplicationNotFound):
        hospital.reports(application_no=unique("A"))
    assert hospital.reports(patient_id=unique("P"))["reports"] == []




def test_withdrawing_twice_is_two_withdrawals(hospital):
    no = hospital.released()
    hospital.push(no, "FINAL", impression="a")
    hospital.push(no, "WITHDRAWN", minutes=90)
    hospital.push(no, "FINAL", impression="b", minutes=100)
    again = hospital.push(no, "WITHDRAWN", minutes=90)  # the same fields as the first withdrawal
    assert (again["applied"], again["report_version"], again["application"]["status"]) == (True, 4, "EXAMINED")


def test_going_back_to_an_earlier_draft_is_a_new_version(hospital):
    no = hospital.released()
    hospital.push(no, "PRELIMINARY", findings="a")
    hospital.push(no, "PRELIMINARY", findings="b")
    back = hospital.push(no, "PRELIMINARY", findings="a")
    assert (back["applied"], back["report_version"]) == (True, 3)
    [report] = hospital.reports(application_no=no, include_preliminary=True)["reports"]
    assert report["findings"] == "a"


def test_one_report_number_pushed_for_two_applications_at_once(hospital):
    from tests.integration.test_races import run_together

    for _ in range(5):
        a, b = hospital.released(), hospital.released()
        report_no = unique("RPT")
        outcomes = run_together(lambda: hospital.push(a, "PRELIMINARY", report_no=report_no),
                                lambda: hospital.push(b, "PRELIMINARY", report_no=report_no))
        assert sorted(type(o).__name__ for o in outcomes) == ["InvalidTransition", "dict"]
