"""The one exception hierarchy of the service; the SOAP edge maps each to a fault code.

Messages reach the caller in the fault string: they may name business keys (application
numbers, charge ids) but never patient data (names, patient ids, phone numbers).
"""


class ServiceError(Exception):
    """A refused request. ``code`` is the contract's stable fault code."""

    code = "InternalError"
    side = "Client"  # faultcode prefix: Client for the caller's mistakes, Server for ours
    retryable = False
    # A business answer is stored with the MessageId and replayed to a retry; a malformed
    # request is not: nothing is stored, and the corrected request may reuse the MessageId.
    replayable = True

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AuthenticationFailed(ServiceError):
    """No valid WS-Security UsernameToken: one answer for every reason, to tell nothing."""

    code = "AuthenticationFailed"
    replayable = False


class AccessDenied(ServiceError):
    """The calling system may not use this service, or this department's applications."""

    code = "AccessDenied"
    replayable = False


class SchemaValidationError(ServiceError):
    """The request does not match the schema or a rule the schema cannot express."""

    code = "SchemaValidationError"
    replayable = False


class MessageIdReused(ServiceError):
    """A MessageId was sent again with a different request."""

    code = "MessageIdReused"


class ApplicationNotFound(ServiceError):
    """No such application (or PACS asked for one it cannot see yet)."""

    code = "ApplicationNotFound"


class ApplicationExists(ServiceError):
    """The ApplicationNo exists with different content."""

    code = "ApplicationExists"


class ApplicationLocked(ServiceError):
    """The patient is registered: HIS can no longer cancel or refund."""

    code = "ApplicationLocked"


class InvalidTransition(ServiceError):
    """The event does not apply to the application's current status."""

    code = "InvalidTransition"


class NotInpatient(ServiceError):
    """An inpatient-only operation on another patient type."""

    code = "NotInpatient"


class NotOutpatient(ServiceError):
    """A cashier payment for an inpatient, who settles at discharge."""

    code = "NotOutpatient"


class AmountMismatch(ServiceError):
    """The paid amount is not the application total."""

    code = "AmountMismatch"


class ChargeNotAllowed(ServiceError):
    """PACS charges apply only to inpatients' live applications."""

    code = "ChargeNotAllowed"


class ChargeNotFound(ServiceError):
    """The charge line is not on this application."""

    code = "ChargeNotFound"


class ChargeRequestExists(ServiceError):
    """The ChargeRequestNo exists with different content."""

    code = "ChargeRequestExists"


class RefundExceedsCharge(ServiceError):
    """The refund exceeds what remains of the charge line."""

    code = "RefundExceedsCharge"


class RefundNotAllowed(ServiceError):
    """PACS refunds apply only to inpatient charge lines."""

    code = "RefundNotAllowed"


class RefundRequestExists(ServiceError):
    """The RefundRequestNo exists with different content."""

    code = "RefundRequestExists"


class CriticalValueExists(ServiceError):
    """The CriticalValueNo exists with different content."""

    code = "CriticalValueExists"


class CriticalValueNotFound(ServiceError):
    """No such critical value."""

    code = "CriticalValueNotFound"


class PatientNotFound(ServiceError):
    """No records of this patient have been published."""

    code = "PatientNotFound"


class PatientMismatch(ServiceError):
    """A VisitNo, DocumentId or OrderNo that belongs to another patient."""

    code = "PatientMismatch"


class Unavailable(ServiceError):
    """The database cannot be reached; the caller may retry with the same MessageId."""

    code = "Unavailable"
    side = "Server"
    retryable = True
