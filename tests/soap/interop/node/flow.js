#!/usr/bin/env node
// The interop flow (../FLOW.md) as a PACS vendor's integrator writes it with node-soap:
// clients built from the served WSDLs, a PasswordDigest UsernameToken on every call,
// requests as plain objects, lists as wrapper objects, money as decimal strings.
// Prints one `ok ...` line per check; exits 1 at the first mismatch.
'use strict';

const crypto = require('crypto');
const soap = require('soap');

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const BASE = env('HIS_PACS_URL').replace(/\/+$/, '');
const HIS_USER = env('HIS_PACS_HIS_USER');
const HIS_PASSWORD = env('HIS_PACS_HIS_PASSWORD');
const PACS_USER = env('HIS_PACS_PACS_USER');
const PACS_PASSWORD = env('HIS_PACS_PACS_PASSWORD');

const SUFFIX = crypto.randomBytes(5).toString('hex');
const key = (prefix) => `${prefix}${SUFFIX}`;

// node-soap turns xs:dateTime into a JS Date, which keeps the instant but drops the offset
// the server sent (and anything finer than milliseconds). Keep the text so the offset can be
// read; `new Date(text)` still gives the instant where one is needed.
// Money and Quantity are named restrictions of xs:decimal (tns:Money, tns:Quantity): node-soap
// converts only elements typed xs:decimal itself (to a JS Number), so these arrive as their
// exact text, e.g. '150.50'; the flow checks that they do.
const CLIENT_OPTIONS = {
  customDeserializer: {
    dateTime: (text) => text,
  },
};

class Mismatch extends Error {}

function ok(message) {
  console.log(`ok ${message}`);
}

function expect(condition, what, got) {
  if (!condition) {
    throw new Mismatch(`${what}: got ${JSON.stringify(got)}`);
  }
}

// Lists are wrapper objects whose child array node-soap creates from the schema
// (maxOccurs="unbounded"), even for one entry; an empty wrapper (<tns:Charges/>) is null.
function list(wrapper, child) {
  if (wrapper == null) return [];
  const entries = wrapper[child];
  if (entries == null) return [];
  return Array.isArray(entries) ? entries : [entries];
}

const OFFSET = /(Z|[+-]\d{2}:\d{2})$/;

function hasOffset(text) {
  return typeof text === 'string' && OFFSET.test(text) && !Number.isNaN(Date.parse(text));
}

// xs:dateTime with the hospital's offset. node-soap writes a JS Date as an EMPTY element,
// so every date-time goes out as a string.
function shanghaiTime(msAgo) {
  const shifted = new Date(Date.now() - msAgo + 8 * 3600 * 1000);
  return shifted.toISOString().replace(/\.\d{3}Z$/, '+08:00');
}

// node-soap rejects a call that got a SOAP fault with an Error carrying the parsed envelope
// in `root`; the fault detail is not bound to a type, so its leaves are strings.
function soapFault(err) {
  const fault = err && err.root && err.root.Envelope && err.root.Envelope.Body && err.root.Envelope.Body.Fault;
  if (!fault) return null;
  const text = (v) => (v != null && typeof v === 'object' && '$value' in v ? v.$value : v);
  const detail = (fault.detail && fault.detail.ServiceFault) || {};
  return {
    faultcode: String(text(fault.faultcode) || ''),
    faultstring: text(fault.faultstring),
    code: text(detail.Code),
    message: text(detail.Message),
    retryable: text(detail.Retryable),
  };
}

async function expectFault(call, what) {
  try {
    await call();
  } catch (err) {
    const fault = soapFault(err);
    if (fault) return fault;
    throw err;
  }
  throw new Mismatch(`${what}: expected a SOAP fault, the call succeeded`);
}

async function client(service, user, password) {
  const c = await soap.createClientAsync(`${BASE}/ws/${service}?wsdl`, CLIENT_OPTIONS);
  // WSSecurity#toXML runs for every request and makes a new 16-byte nonce and Created each
  // time, so one instance per client signs every call with a fresh token.
  c.setSecurity(new soap.WSSecurity(user, password, {
    passwordType: 'PasswordDigest',
    hasNonce: true,
    hasTimeStamp: false,
  }));
  return c;
}

function nonceOf(c) {
  const m = /<wsse:Nonce[^>]*>([^<]+)<\/wsse:Nonce>/.exec(c.lastRequest || '');
  return m && m[1];
}

async function main() {
  const his = await client('his', HIS_USER, HIS_PASSWORD);
  const pacs = await client('pacs', PACS_USER, PACS_PASSWORD);
  ok(`clients built from ${BASE}/ws/his?wsdl and ${BASE}/ws/pacs?wsdl`);

  const applicationNo = key('NODE-A');
  const doctor = { Code: 'D001', Name: '王医生' };

  // 1. SubmitApplication
  const [submitted] = await his.SubmitApplicationAsync({
    request: {
      MessageId: key('NODE-M1-'),
      ApplicationNo: applicationNo,
      Patient: { PatientId: key('NODE-P'), Name: '张三', Sex: 'M' },
      Visit: { VisitNo: key('NODE-V'), PatientType: 'OUTPATIENT' },
      OrderingDoctor: doctor,
      OrderingDepartmentCode: 'NK',
      OrderingDepartmentName: '内科',
      ExecutingDepartmentCode: 'CT',
      ExecutingDepartmentName: 'CT室',
      OrderedAt: shanghaiTime(60000),
      Items: {
        ApplicationItem: [
          { ItemCode: 'CT001', ItemName: '头颅CT平扫', Quantity: '1', UnitPrice: '150.50', Modality: 'CT', BodyPart: '头颅' },
          { ItemCode: 'FILM', ItemName: '胶片', Quantity: '2', UnitPrice: '10.25' },
        ],
      },
    },
  });
  const nonce1 = nonceOf(his);
  const app1 = submitted.SubmitApplicationResult.Application;
  expect(app1.ApplicationNo === applicationNo, 'SubmitApplication ApplicationNo', app1.ApplicationNo);
  expect(app1.Status === 'NEW', 'SubmitApplication Status', app1.Status);
  expect(app1.HisStatus === '待收费', 'SubmitApplication HisStatus', app1.HisStatus);
  expect(app1.Locked === false, 'SubmitApplication Locked (xs:boolean as JS boolean)', app1.Locked);
  ok(`SubmitApplication ${applicationNo}: ${app1.Status} ${app1.HisStatus}`);

  // 2. ConfirmPayment
  const [paid] = await his.ConfirmPaymentAsync({
    request: {
      MessageId: key('NODE-M2-'),
      ApplicationNo: applicationNo,
      Amount: '171.00',
      PaidAt: shanghaiTime(50000),
      InvoiceNo: key('NODE-INV'),
    },
  });
  const nonce2 = nonceOf(his);
  expect(nonce1 && nonce2 && nonce1 !== nonce2, 'a fresh nonce per call', [nonce1, nonce2]);
  ok('WSSecurity signs each call with a fresh nonce');
  const app2 = paid.ConfirmPaymentResult.Application;
  expect(app2.Status === 'RELEASED', 'ConfirmPayment Status', app2.Status);
  ok(`ConfirmPayment 171.00: ${app2.Status} ${app2.HisStatus}`);

  // 3. PACS QueryApplications
  const [queried] = await pacs.QueryApplicationsAsync({ request: { ApplicationNo: applicationNo } });
  const details = queried.QueryApplicationsResult.Applications.ApplicationDetail;
  expect(Array.isArray(details) && details.length === 1, 'QueryApplications: one ApplicationDetail in a list', details);
  const detail = details[0];
  expect(detail.Patient.Name === '张三', 'QueryApplications patient name', detail.Patient.Name);
  const items = detail.Items.ApplicationItem;
  expect(Array.isArray(items) && items.length === 2, 'QueryApplications items', items);
  const price = items[0].UnitPrice;
  expect(typeof price === 'string', 'UnitPrice arrives as text, not a JS number', typeof price);
  expect(price === '150.50', 'first UnitPrice', price);
  expect(detail.TotalAmount === '171.00', 'TotalAmount', detail.TotalAmount);
  ok(`QueryApplications: 1 detail, patient ${detail.Patient.Name}, ${items.length} items, `
    + `UnitPrice '${price}' (${typeof price}), Quantity '${items[0].Quantity}', TotalAmount '${detail.TotalAmount}'`);

  // 4. PACS ReportStatus REGISTERED
  const [registered] = await pacs.ReportStatusAsync({
    request: {
      MessageId: key('NODE-M3-'),
      ApplicationNo: applicationNo,
      Status: 'REGISTERED',
      OccurredAt: shanghaiTime(40000),
      Operator: { Code: 'R001', Name: '登记员' },
      AccessionNo: key('NODE-ACC'),
    },
  });
  const app4 = registered.ReportStatusResult.Application;
  expect(app4.Status === 'REGISTERED', 'ReportStatus Status', app4.Status);
  expect(app4.Locked === true, 'ReportStatus Locked', app4.Locked);
  expect(registered.ReportStatusResult.Applied === true, 'ReportStatus Applied', registered.ReportStatusResult.Applied);
  ok(`ReportStatus REGISTERED: Locked ${app4.Locked}, AccessionNo ${app4.AccessionNo}`);

  // 5. CancelApplication on a locked application: a business fault
  const locked = await expectFault(() => his.CancelApplicationAsync({
    request: {
      MessageId: key('NODE-M4-'),
      ApplicationNo: applicationNo,
      Reason: '患者要求取消',
      Operator: doctor,
      CancelledAt: shanghaiTime(30000),
    },
  }), 'CancelApplication after REGISTERED');
  expect(locked.faultcode.endsWith('Client.ApplicationLocked'), 'CancelApplication faultcode', locked.faultcode);
  expect(locked.code === 'ApplicationLocked', 'CancelApplication ServiceFault Code', locked.code);
  expect(locked.retryable === 'false', 'ServiceFault Retryable (text, the detail is untyped)', locked.retryable);
  ok(`CancelApplication fault ${locked.faultcode}, ServiceFault Code ${locked.code}: ${locked.message}`);

  // 6. GetApplication
  const [got] = await his.GetApplicationAsync({ request: { ApplicationNo: applicationNo } });
  const result = got.GetApplicationResult;
  const events = list(result.Timeline, 'StatusEvent').map((e) => e.Event);
  expect(JSON.stringify(events) === JSON.stringify(['SUBMITTED', 'PAID', 'REGISTERED']), 'GetApplication Timeline', events);
  const amounts = list(result.Charges, 'ChargeLine').map((c) => c.Amount);
  expect(JSON.stringify(amounts) === JSON.stringify(['150.50', '20.50']), 'GetApplication charge Amounts', amounts);
  const updatedAt = result.Application.UpdatedAt;
  expect(hasOffset(updatedAt), 'GetApplication UpdatedAt with an offset', updatedAt);
  ok(`GetApplication: Timeline ${events.join(',')}, charges ${amounts.join(',')}, UpdatedAt ${updatedAt}`);

  // 7. A wrong password
  const intruder = await client('his', HIS_USER, `${HIS_PASSWORD}-wrong`);
  const denied = await expectFault(
    () => intruder.GetApplicationAsync({ request: { ApplicationNo: applicationNo } }),
    'a call with a wrong password',
  );
  expect(denied.faultcode.endsWith('Client.AuthenticationFailed'), 'wrong password faultcode', denied.faultcode);
  expect(denied.code === 'AuthenticationFailed', 'wrong password ServiceFault Code', denied.code);
  ok(`wrong password: ${denied.faultcode}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err instanceof Mismatch) {
      console.error(`MISMATCH ${err.message}`);
    } else {
      const fault = soapFault(err);
      console.error(fault ? `unexpected SOAP fault ${JSON.stringify(fault)}` : (err && err.stack) || err);
    }
    process.exit(1);
  },
);
