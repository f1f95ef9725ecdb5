<?php
/*
 * The interop flow (tests/soap/interop/FLOW.md) as a hospital HIS written in PHP calls the
 * service: ext/soap's SoapClient in WSDL mode on the served WSDLs, a WS-Security
 * UsernameToken with PasswordDigest on every call, requests as plain PHP arrays.
 *
 * Reads HIS_PACS_URL, HIS_PACS_HIS_USER, HIS_PACS_HIS_PASSWORD, HIS_PACS_PACS_USER and
 * HIS_PACS_PACS_PASSWORD. Prints one "ok ..." line per check; exits 1 at the first mismatch.
 *
 * What a PHP integrator needs to know, all shown below:
 *  - WS-Security: ext/soap has none built in. Build the <wsse:Security> header as XML and
 *    hand it over as SoapHeader(WSSE_NS, 'Security', new SoapVar($xml, XSD_ANYXML)). With
 *    XSD_ANYXML, SoapClient inserts the XML as it is and ignores the SoapHeader's own
 *    mustUnderstand flag, so soapenv:mustUnderstand="1" is written into the XML. A digest
 *    token must be built afresh for every call (a nonce is accepted once, Created is
 *    checked against the server clock, +-5 minutes), hence WsseSoapClient::__call().
 *  - Money and quantities (xs:decimal restrictions Money, Quantity, ...): ext/soap decodes
 *    xs:decimal to a PHP *string* ("150.50", "1.000"), so no `typemap` is needed and values
 *    stay exact. Send them as strings too ('150.50'), never as floats, and do arithmetic
 *    with bcmath or in integer fen. (Only if a wrapper library hands you floats, map the
 *    types Money and Quantity of urn:his-pacs-ws:v1 to strings with the `typemap` option.)
 *  - Lists: use features => SOAP_SINGLE_ELEMENT_ARRAYS, otherwise a list with one entry
 *    arrives as an object instead of an array of one. An empty list arrives as an empty
 *    wrapper object (no child property): read it as `$wrapper->Child ?? []`.
 *  - Faults: a SoapFault. `faultcode` keeps the server's prefix
 *    ("soap11env:Client.ApplicationLocked"): compare what follows the last dot, or the
 *    detail's Code. ext/soap decodes the <detail> without the WSDL's types, so
 *    `$fault->detail->ServiceFault->Retryable` is the *string* "true"/"false" (and "false"
 *    is truthy in PHP): read it with filter_var(..., FILTER_VALIDATE_BOOLEAN).
 *  - Date-times come back as strings with an offset and whole seconds
 *    ("2026-11-26T14:42:19+08:00"): DateTime::createFromFormat(DATE_ATOM, $s) reads them.
 *  - Optional request fields may be left out or set to null: SoapClient omits both.
 */

declare(strict_types=1);

const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const WSU_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const SOAPENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
const PASSWORD_DIGEST = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const BASE64_BINARY = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';
const HOSPITAL_TZ = 'Asia/Shanghai';

/** A SoapClient that signs every call with a fresh UsernameToken (PasswordDigest). */
final class WsseSoapClient extends SoapClient
{
    private string $username;
    private string $password;

    public function __construct(string $wsdl, array $options, string $username, string $password)
    {
        $this->username = $username;
        $this->password = $password;
        parent::__construct($wsdl, $options);
    }

    /** $client->SubmitApplication(['request' => [...]]) goes through here. */
    public function __call(string $name, array $args): mixed
    {
        return $this->__soapCall($name, $args, null, $this->securityHeader());
    }

    private function securityHeader(): SoapHeader
    {
        $nonce = random_bytes(16);
        $created = gmdate('Y-m-d\TH:i:s\Z');
        // PasswordDigest = Base64(SHA-1(nonce + created + password)), nonce as raw bytes.
        $digest = base64_encode(sha1($nonce . $created . $this->password, true));
        $xml = '<wsse:Security xmlns:wsse="' . WSSE_NS . '" xmlns:wsu="' . WSU_NS . '"'
            . ' xmlns:soapenv="' . SOAPENV_NS . '" soapenv:mustUnderstand="1">'
            . '<wsse:UsernameToken>'
            . '<wsse:Username>' . htmlspecialchars($this->username, ENT_XML1) . '</wsse:Username>'
            . '<wsse:Password Type="' . PASSWORD_DIGEST . '">' . $digest . '</wsse:Password>'
            . '<wsse:Nonce EncodingType="' . BASE64_BINARY . '">' . base64_encode($nonce) . '</wsse:Nonce>'
            . '<wsu:Created>' . $created . '</wsu:Created>'
            . '</wsse:UsernameToken>'
            . '</wsse:Security>';
        return new SoapHeader(WSSE_NS, 'Security', new SoapVar($xml, XSD_ANYXML), true);
    }
}

final class Mismatch extends RuntimeException
{
}

function env(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        throw new Mismatch("environment variable $name is not set");
    }
    return $value;
}

function ok(string $line): void
{
    echo "ok $line\n";
}

function expect(bool $condition, string $what, mixed $actual = null): void
{
    if (!$condition) {
        throw new Mismatch($what . ($actual === null ? '' : ', got ' . var_export($actual, true)));
    }
}

/** The entries of a list wrapper (<Items><ApplicationItem>...): absent or empty gives []. */
function entries(?object $wrapper, string $child): array
{
    return $wrapper === null ? [] : ($wrapper->$child ?? []);
}

function now(): string
{
    return (new DateTimeImmutable('now', new DateTimeZone(HOSPITAL_TZ)))->format('Y-m-d\TH:i:sP');
}

function has_offset(string $dateTime): bool
{
    return (bool) preg_match('/T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/', $dateTime);
}

/** The contract code of a fault: "soap11env:Client.ApplicationLocked" -> "Client.ApplicationLocked". */
function fault_code(SoapFault $fault): string
{
    $code = (string) $fault->faultcode;
    $colon = strrpos($code, ':');
    return $colon === false ? $code : substr($code, $colon + 1);
}

/** The ServiceFault detail: Code, Message, and Retryable as a real bool. */
function service_fault(SoapFault $fault): array
{
    $detail = $fault->detail->ServiceFault ?? null;
    expect(is_object($detail), 'a ServiceFault detail in the fault', $fault->detail ?? null);
    return [
        'Code' => $detail->Code,
        'Message' => $detail->Message,
        'Retryable' => filter_var($detail->Retryable, FILTER_VALIDATE_BOOLEAN, FILTER_NULL_ON_FAILURE),
    ];
}

/** Runs $call, which must fail with a SoapFault; returns it. */
function expect_fault(callable $call, string $what): SoapFault
{
    try {
        $call();
    } catch (SoapFault $fault) {
        return $fault;
    }
    throw new Mismatch("$what: expected a SOAP fault, the call succeeded");
}

function walk(): void
{
    $url = rtrim(env('HIS_PACS_URL'), '/');
    $options = [
        'soap_version' => SOAP_1_1,
        'trace' => true,
        'exceptions' => true,
        'cache_wsdl' => WSDL_CACHE_NONE,
        'encoding' => 'UTF-8',
        'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
        'connection_timeout' => 10,
    ];
    $his = new WsseSoapClient("$url/ws/his?wsdl", $options, env('HIS_PACS_HIS_USER'), env('HIS_PACS_HIS_PASSWORD'));
    $pacs = new WsseSoapClient("$url/ws/pacs?wsdl", $options, env('HIS_PACS_PACS_USER'), env('HIS_PACS_PACS_PASSWORD'));
    $GLOBALS['clients'] = ['HisService' => $his, 'PacsService' => $pacs];

    $suffix = bin2hex(random_bytes(5));
    $applicationNo = "PHP-A$suffix";
    $accessionNo = "PHP-ACC$suffix";
    $messageId = fn(string $step) => "PHP-$step-$suffix";
    $doctor = ['Code' => 'D001', 'Name' => '王医生'];

    // 1. SubmitApplication: Chinese text, a list of two items, decimals as strings.
    $result = $his->SubmitApplication(['request' => [
        'MessageId' => $messageId('submit'),
        'ApplicationNo' => $applicationNo,
        'Patient' => ['PatientId' => "PHP-P$suffix", 'Name' => '张三', 'Sex' => 'M'],
        'Visit' => ['VisitNo' => "PHP-V$suffix", 'PatientType' => 'OUTPATIENT'],
        'OrderingDoctor' => $doctor,
        'OrderingDepartmentCode' => 'NK',
        'OrderingDepartmentName' => '内科',
        'ExecutingDepartmentCode' => 'CT',
        'ExecutingDepartmentName' => 'CT室',
        'OrderedAt' => now(),
        'ClinicalDiagnosis' => '头痛待查',
        'Items' => ['ApplicationItem' => [
            ['ItemCode' => 'CT001', 'ItemName' => '头颅CT平扫', 'Quantity' => '1', 'UnitPrice' => '150.50',
             'Modality' => 'CT', 'BodyPart' => '头颅'],
            ['ItemCode' => 'FILM', 'ItemName' => '胶片', 'Quantity' => '2', 'UnitPrice' => '10.25'],
        ]],
    ]]);
    $state = $result->SubmitApplicationResult->Application;
    expect($state->ApplicationNo === $applicationNo, 'SubmitApplication: ApplicationNo', $state->ApplicationNo);
    expect($state->Status === 'NEW', 'SubmitApplication: Status NEW', $state->Status);
    expect($state->HisStatus === '待收费', 'SubmitApplication: HisStatus 待收费', $state->HisStatus);
    expect($state->Locked === false, 'SubmitApplication: Locked false', $state->Locked);
    ok("1 SubmitApplication $applicationNo: Status $state->Status, HisStatus $state->HisStatus");

    // 2. ConfirmPayment of the total, 150.50 + 2 x 10.25.
    $result = $his->ConfirmPayment(['request' => [
        'MessageId' => $messageId('pay'),
        'ApplicationNo' => $applicationNo,
        'Amount' => '171.00',
        'PaidAt' => now(),
        'InvoiceNo' => "PHP-INV$suffix",
    ]]);
    $state = $result->ConfirmPaymentResult->Application;
    expect($state->Status === 'RELEASED', 'ConfirmPayment: Status RELEASED', $state->Status);
    ok("2 ConfirmPayment 171.00: Status $state->Status, HisStatus $state->HisStatus");

    // 3. PACS sees it on its worklist.
    $result = $pacs->QueryApplications(['request' => ['ApplicationNo' => $applicationNo]]);
    $details = entries($result->QueryApplicationsResult->Applications ?? null, 'ApplicationDetail');
    expect(is_array($details) && count($details) === 1, 'QueryApplications: one ApplicationDetail in a list', $details);
    $detail = $details[0];
    expect($detail->ApplicationNo === $applicationNo, 'QueryApplications: ApplicationNo', $detail->ApplicationNo);
    expect($detail->Patient->Name === '张三', 'QueryApplications: patient name 张三', $detail->Patient->Name);
    $items = entries($detail->Items, 'ApplicationItem');
    expect(count($items) === 2, 'QueryApplications: two items', $items);
    expect($items[0]->ItemName === '头颅CT平扫' && $items[1]->ItemName === '胶片', 'QueryApplications: item names',
        [$items[0]->ItemName, $items[1]->ItemName]);
    // Exact decimals: strings as the server wrote them, no float on the way.
    expect($items[0]->UnitPrice === '150.50', 'QueryApplications: first UnitPrice exactly "150.50"', $items[0]->UnitPrice);
    expect($items[1]->UnitPrice === '10.25', 'QueryApplications: second UnitPrice exactly "10.25"', $items[1]->UnitPrice);
    expect(is_string($items[1]->Quantity) && (float) $items[1]->Quantity === 2.0, 'QueryApplications: Quantity 2 as text',
        $items[1]->Quantity);
    expect($detail->TotalAmount === '171.00', 'QueryApplications: TotalAmount exactly "171.00"', $detail->TotalAmount);
    ok(sprintf('3 QueryApplications: %d ApplicationDetail, patient %s, %d items, UnitPrice %s (%s), TotalAmount %s',
        count($details), $detail->Patient->Name, count($items), $items[0]->UnitPrice, gettype($items[0]->UnitPrice),
        $detail->TotalAmount));

    // 4. PACS registers the patient: from now on HIS cannot cancel.
    $result = $pacs->ReportStatus(['request' => [
        'MessageId' => $messageId('register'),
        'ApplicationNo' => $applicationNo,
        'Status' => 'REGISTERED',
        'OccurredAt' => now(),
        'Operator' => ['Code' => 'R001', 'Name' => '登记员'],
        'AccessionNo' => $accessionNo,
        'Room' => 'CT1',
    ]]);
    $state = $result->ReportStatusResult->Application;
    expect($state->Status === 'REGISTERED', 'ReportStatus: Status REGISTERED', $state->Status);
    expect($state->Locked === true, 'ReportStatus: Locked true', $state->Locked);
    expect($state->AccessionNo === $accessionNo, 'ReportStatus: AccessionNo', $state->AccessionNo ?? null);
    ok("4 ReportStatus REGISTERED $accessionNo: Status $state->Status, Locked true");

    // 5. The business fault: a locked application cannot be cancelled.
    $fault = expect_fault(fn() => $his->CancelApplication(['request' => [
        'MessageId' => $messageId('cancel'),
        'ApplicationNo' => $applicationNo,
        'Reason' => '患者要求取消',
        'Operator' => $doctor,
        'CancelledAt' => now(),
    ]]), 'CancelApplication of a registered application');
    expect(str_ends_with((string) $fault->faultcode, 'Client.ApplicationLocked'), 'CancelApplication: faultcode',
        $fault->faultcode);
    $serviceFault = service_fault($fault);
    expect($serviceFault['Code'] === 'ApplicationLocked', 'CancelApplication: ServiceFault Code', $serviceFault['Code']);
    expect($serviceFault['Retryable'] === false, 'CancelApplication: Retryable false', $fault->detail->ServiceFault->Retryable);
    ok(sprintf('5 CancelApplication fault: faultcode %s (%s), ServiceFault Code %s, Retryable false, message "%s"',
        $fault->faultcode, fault_code($fault), $serviceFault['Code'], $serviceFault['Message']));

    // 6. The whole story as HIS sees it.
    $result = $his->GetApplication(['request' => ['ApplicationNo' => $applicationNo]])->GetApplicationResult;
    $application = $result->Application;
    expect($application->Status === 'REGISTERED', 'GetApplication: Status REGISTERED', $application->Status);
    $events = array_map(fn($e) => $e->Event, entries($result->Timeline ?? null, 'StatusEvent'));
    expect($events === ['SUBMITTED', 'PAID', 'REGISTERED'], 'GetApplication: Timeline SUBMITTED, PAID, REGISTERED', $events);
    $amounts = array_map(fn($c) => $c->Amount, entries($result->Charges ?? null, 'ChargeLine'));
    sort($amounts, SORT_STRING);
    expect($amounts === ['150.50', '20.50'], 'GetApplication: charge Amounts exactly "150.50" and "20.50"', $amounts);
    expect(is_string($application->UpdatedAt) && has_offset($application->UpdatedAt), 'GetApplication: UpdatedAt with an offset',
        $application->UpdatedAt);
    $updatedAt = new DateTimeImmutable($application->UpdatedAt);
    ok(sprintf('6 GetApplication: Timeline %s, charge Amounts %s, UpdatedAt %s (offset %s)',
        implode(',', $events), implode(',', $amounts), $application->UpdatedAt, $updatedAt->format('P')));

    // 7. A wrong password is refused.
    $intruder = new WsseSoapClient("$url/ws/his?wsdl", $options, env('HIS_PACS_HIS_USER'), 'not-the-password');
    $GLOBALS['clients']['HisService (wrong password)'] = $intruder;
    $fault = expect_fault(fn() => $intruder->GetApplication(['request' => ['ApplicationNo' => $applicationNo]]),
        'a call with a wrong password');
    expect(str_ends_with((string) $fault->faultcode, 'Client.AuthenticationFailed'), 'wrong password: faultcode',
        $fault->faultcode);
    $serviceFault = service_fault($fault);
    expect($serviceFault['Code'] === 'AuthenticationFailed', 'wrong password: ServiceFault Code', $serviceFault['Code']);
    ok("7 wrong password: faultcode $fault->faultcode, ServiceFault Code {$serviceFault['Code']}");
}

// Any PHP notice or warning (an undefined property, say) is a mismatch too.
set_error_handler(function (int $severity, string $message, string $file, int $line): bool {
    throw new ErrorException($message, 0, $severity, $file, $line);
});

$GLOBALS['clients'] = [];
try {
    walk();
} catch (Throwable $error) {
    fwrite(STDERR, 'FAIL ' . get_class($error) . ': ' . $error->getMessage() . "\n");
    if ($error instanceof SoapFault) {
        fwrite(STDERR, "faultcode: {$error->faultcode}\n");
    }
    if (!$error instanceof Mismatch) {
        fwrite(STDERR, $error->getTraceAsString() . "\n");
    }
    foreach ($GLOBALS['clients'] as $name => $client) {
        fwrite(STDERR, "--- $name last request:\n" . $client->__getLastRequest() . "\n");
        fwrite(STDERR, "--- $name last response:\n" . $client->__getLastResponse() . "\n");
    }
    exit(1);
}
exit(0);
