#!/usr/bin/env node
// A foreign (non-Rust) client of the doudi hub: Node.js @grpc/grpc-js + @grpc/proto-loader over mutual TLS.
//
// Loads proto/ at run time (no generated code), connects with the example certificates and checks,
// against a running hub:
//   1. push: PushFacts of an assistance fact as civil_affairs -> FACT_OUTCOME_ACCEPTED; again -> DUPLICATE
//   2. get: GetRecipient as medical_insurance -> the fact, with monthly_benefit
//   3. list: ListRecipients as civil_affairs, division_code 621022 -> total_size >= 1
//   4. a permission denial: GetRecipient as leading_group -> PERMISSION_DENIED
//   5. Chinese text in a status message: the county office civil_affairs-621022 lists 621002 ->
//      PERMISSION_DENIED whose message names both 西峰区 and 环县 (percent-encoded on the wire as the
//      gRPC protocol requires; grpc-js must hand it back decoded in err.details)
//   6. WatchChanges with a resume: watch from now as civil_affairs (the first message is a heartbeat with
//      the starting cursor), push a fact, receive its change; cancel; push another; watch again from the
//      first change's cursor -> the second fact's change, and never the first again
//
// Usage: node check.js --target localhost:50051 [--certs certs-example] [--proto proto]
// Prints one "ok:" line per check; on the first failed check prints "FAIL: ..." and exits 1.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const ROOT = path.resolve(__dirname, '..', '..');
// A valid GB 11643 number (check digit 4), distinct from the one the Python client and grpcurl use.
const ID_NUMBER = '621022199102020324';
const DIVISION = '621022101203'; // a village of 环县 (621022)

class CheckFailed extends Error {}

function parseArgs(argv) {
  const args = {
    target: process.env.DOUDI_TARGET || 'localhost:50051',
    certs: path.join(ROOT, 'certs-example'),
    proto: path.join(ROOT, 'proto'),
    timeout: 15,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) || argv[i + 1] === undefined) {
      console.error(`usage: node check.js [--target HOST:PORT] [--certs DIR] [--proto DIR] [--timeout SECS]`);
      process.exit(2);
    }
    args[key] = key === 'timeout' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return args;
}

const ok = (msg) => console.log(`ok: node: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const versions = ['@grpc/grpc-js', '@grpc/proto-loader']
    .map((p) => `${p} ${require(`${p}/package.json`).version}`)
    .join(', ');

  const v1 = path.join(args.proto, 'doudi', 'v1');
  const files = fs.readdirSync(v1).filter((f) => f.endsWith('.proto')).sort().map((f) => `doudi/v1/${f}`);
  // longs as strings (uint64/int64), enums as their names, proto field names as written (snake_case).
  const def = protoLoader.loadSync(files, {
    includeDirs: [args.proto],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def).doudi.v1;
  ok(`proto loaded from ${path.relative(process.cwd(), args.proto) || '.'} (${versions})`);

  const ca = fs.readFileSync(path.join(args.certs, 'ca.pem'));
  const clients = [];
  const deadline = () => new Date(Date.now() + args.timeout * 1000);

  async function client(agency) {
    const creds = grpc.credentials.createSsl(
      ca,
      fs.readFileSync(path.join(args.certs, `${agency}.key`)),
      fs.readFileSync(path.join(args.certs, `${agency}.pem`)),
    );
    const c = new pkg.RecipientExchange(args.target, creds);
    clients.push(c);
    await new Promise((resolve, reject) =>
      c.waitForReady(deadline(), (err) =>
        err ? reject(new CheckFailed(`no TLS connection to ${args.target} as ${agency}: ${err.message}`)) : resolve(),
      ),
    );
    return c;
  }
  const call = (c, method, req) =>
    new Promise((resolve, reject) =>
      c[method](req, { deadline: deadline() }, (err, resp) => (err ? reject(err) : resolve(resp))),
    );
  async function callError(c, method, req) {
    let resp;
    try {
      resp = await call(c, method, req);
    } catch (err) {
      return err;
    }
    throw new CheckFailed(`${method}: expected an error, got a response: ${JSON.stringify(resp)}`);
  }
  const codeName = (code) => Object.keys(grpc.status).find((k) => grpc.status[k] === code) || String(code);

  try {
    // 1. push, then the same again
    const civil = await client('civil_affairs');
    const factId = `NODE-${Date.now()}-${process.pid}`; // fresh per run: reruns against one hub pass
    const push = {
      facts: [
        {
          fact_id: factId,
          source_version: '1',
          id_number: ID_NUMBER,
          division_code: DIVISION,
          valid_from: '2023-01-01',
          assistance: {
            program: 'PROGRAM_DIBAO',
            residence: 'RESIDENCE_RURAL',
            rural_class: 2,
            household_id: 'HH-NODE',
            monthly_benefit: '442.00',
            status: 'ASSISTANCE_STATUS_ACTIVE',
          },
        },
      ],
    };
    for (const want of ['FACT_OUTCOME_ACCEPTED', 'FACT_OUTCOME_DUPLICATE']) {
      const resp = await call(civil, 'PushFacts', push);
      const got = resp.results.map((r) => r.outcome);
      expect(
        got.length === 1 && got[0] === want,
        `PushFacts ${factId}: want [${want}], got ${JSON.stringify(resp.results)}`,
      );
    }
    ok(`push ${factId}: FACT_OUTCOME_ACCEPTED, then FACT_OUTCOME_DUPLICATE`);

    // 2. get as medical_insurance (reads every assistance field)
    const medical = await client('medical_insurance');
    const get = { id_number: ID_NUMBER, as_of: '2023-06-30', purpose: 'foreign client check (node)' };
    const rec = await call(medical, 'GetRecipient', get);
    const mine = rec.facts.filter((f) => f.fact_id === factId);
    expect(mine.length === 1, `GetRecipient: fact ${factId} not among ${JSON.stringify(rec.facts.map((f) => f.fact_id))}`);
    const f = mine[0];
    expect(f.payload === 'assistance', `GetRecipient: payload ${f.payload}`);
    expect(
      f.assistance.monthly_benefit === '442.00',
      `GetRecipient: monthly_benefit ${JSON.stringify(f.assistance.monthly_benefit)}, want "442.00"`,
    );
    expect(f.agency === 'civil_affairs', `GetRecipient: agency ${JSON.stringify(f.agency)}`);
    ok(`get as medical_insurance: ${factId} with monthly_benefit ${f.assistance.monthly_benefit}`);

    // 3. list as civil_affairs
    const list = await call(civil, 'ListRecipients', {
      division_code: '621022',
      as_of: '2023-06-30',
      purpose: 'foreign client check (node)',
    });
    const total = Number(list.total_size);
    expect(total >= 1, `ListRecipients 621022: total_size ${list.total_size}`);
    expect(
      list.recipients.some((r) => r.id_number === ID_NUMBER) || list.next_page_token,
      'ListRecipients 621022: the pushed person is not on the first (last) page',
    );
    ok(`list 621022 as civil_affairs: total_size ${list.total_size}`);

    // 4. permission denial
    const leading = await client('leading_group');
    let err = await callError(leading, 'GetRecipient', get);
    expect(
      err.code === grpc.status.PERMISSION_DENIED,
      `leading_group GetRecipient: ${codeName(err.code)} ${JSON.stringify(err.details)}, want PERMISSION_DENIED`,
    );
    ok(`leading_group GetRecipient: PERMISSION_DENIED (${err.details})`);

    // 5. Chinese text in the status message, decoded by grpc-js
    const county = await client('civil_affairs-621022');
    err = await callError(county, 'ListRecipients', { division_code: '621002', as_of: '2023-06-30' });
    const msg = err.details || '';
    expect(
      err.code === grpc.status.PERMISSION_DENIED,
      `county office lists 621002: ${codeName(err.code)} ${JSON.stringify(msg)}, want PERMISSION_DENIED`,
    );
    expect(
      msg.includes('西峰区') && msg.includes('环县'),
      `status message should name 西峰区 and 环县 intact, got ${JSON.stringify(msg)}`,
    );
    expect(!/%E/i.test(msg), `status message still percent-encoded: ${JSON.stringify(msg)}`);
    ok(`status message with Chinese text intact: ${msg}`);

    // 6. WatchChanges, then a resume from the last cursor received (cursors are int64: strings here)
    const assistanceFact = (id) => ({ facts: [{ ...push.facts[0], fact_id: id }] });
    const firstId = `${factId}-W1`;
    const secondId = `${factId}-W2`;
    // Resolves with the first message matching `want` (other clients may push to the same hub meanwhile).
    const watchUntil = (stream, want) =>
      new Promise((resolve, reject) => {
        stream.on('data', (c) => {
          if (want(c)) resolve(c);
        });
        stream.on('error', (e) => reject(e));
        stream.on('end', () => reject(new CheckFailed('WatchChanges ended without a status')));
      });
    const ours = (c) => !c.heartbeat && c.fact && [firstId, secondId].includes(c.fact.fact_id);
    let watch = civil.WatchChanges({ purpose: 'foreign client check (node)' }, { deadline: deadline() });
    const hb = await watchUntil(watch, () => true);
    expect(hb.heartbeat === true, `WatchChanges: the first message should be a heartbeat, got ${JSON.stringify(hb)}`);
    let next = watchUntil(watch, ours);
    await call(civil, 'PushFacts', assistanceFact(firstId));
    const c1 = await next;
    expect(
      c1.fact.fact_id === firstId && BigInt(c1.cursor) > BigInt(hb.cursor) && c1.type === 'CHANGE_TYPE_CREATED',
      `WatchChanges: want ${firstId} after cursor ${hb.cursor}, got ${JSON.stringify(c1)}`,
    );
    expect(
      c1.id_number_masked === `${ID_NUMBER.slice(0, 6)}********${ID_NUMBER.slice(14)}`,
      `WatchChanges: id_number_masked ${c1.id_number_masked}`,
    );
    watch.removeAllListeners();
    watch.on('error', () => {}); // the cancellation itself
    watch.cancel();
    await call(civil, 'PushFacts', assistanceFact(secondId));
    watch = civil.WatchChanges({ after_cursor: c1.cursor, purpose: 'foreign client check (node)' }, { deadline: deadline() });
    const c2 = await watchUntil(watch, ours);
    expect(
      c2.fact.fact_id === secondId && BigInt(c2.cursor) > BigInt(c1.cursor),
      `WatchChanges after ${c1.cursor}: want ${secondId}, got ${JSON.stringify(c2)}`,
    );
    watch.removeAllListeners();
    watch.on('error', () => {});
    watch.cancel();
    ok(`watch: ${firstId} at cursor ${c1.cursor}; resumed after it: ${secondId} at cursor ${c2.cursor}`);
  } finally {
    for (const c of clients) c.close();
  }
}

main().then(
  () => console.log('node client: all checks passed'),
  (e) => {
    if (e instanceof CheckFailed) console.log(`FAIL: node: ${e.message}`);
    else if (e && e.code !== undefined && e.details !== undefined)
      console.log(`FAIL: node: unexpected gRPC error ${e.code}: ${JSON.stringify(e.details)}`);
    else console.log(`FAIL: node: unexpected error: ${e && e.stack ? e.stack : e}`);
    process.exitCode = 1;
  },
);
