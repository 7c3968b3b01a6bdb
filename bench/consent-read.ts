/**
 * What consent enforcement costs FHIR reads: the same reads by a practitioner with enforcement on and off, in one
 * run, on one data dir, alternating (on, off, on, off) so that the machine's drift shows as spread, not as a ratio.
 *
 *   npx tsx bench/consent-read.ts -- [--clients 32] [--seconds 8] [--patients 300]
 *
 * Starts `anchorline start` (embedded PostgreSQL, workers in their own process) with a hospital identity provider
 * configured (a key pair and a JWKS served by this script), stores --patients patients over MLLP, gives each a
 * patient-privacy Consent that permits the practitioner everything but mental health (a nested deny, so every
 * decision walks a nested provision), then measures reads by id and searches by identifier with the practitioner's
 * token, and the same reads with the admin key (no consent applies to systems) as a reference. Each phase restarts
 * the engine with consent.enforce true or false. Prints each phase, then the ratio off/on per kind of read.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { adtMessage } from '../test/support/messages.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine, type ChildEngine } from '../test/support/child-engine.ts';
import { describeLoad, HttpLoad, loadAverage } from './http-load.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '8' },
    patients: { type: 'string', default: '300' },
  },
});
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const PATIENTS = Number(values.patients);
const KEY = 'bench-consent-read-key-0123456789abcdef';
const ISSUER = 'https://idp.bench.test';
const AUDIENCE = 'anchorline-bench';
const ADMIN = { authorization: `Bearer ${KEY}` };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const pair = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
const jwks = http.createServer((_request, response) => response.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
const practitionerToken = await new SignJWT({ scope: 'user/*.rs', azp: 'bench' })
  .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
  .setIssuer(ISSUER)
  .setAudience(AUDIENCE)
  .setSubject('bench-dr')
  .setIssuedAt()
  .setExpirationTime('2h')
  .sign(pair.privateKey);
const PRACTITIONER = { authorization: `Bearer ${practitionerToken}` };

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-consent-read-'));
const start = (enforce: boolean): Promise<ChildEngine> =>
  startChildEngine({
    ANCHORLINE_DATA_DIR: dataDir,
    ANCHORLINE_API_KEY: KEY,
    ANCHORLINE__CONSENT__ENFORCE: String(enforce),
    ANCHORLINE__AUTH__EXTERNAL_IDP__ISSUER: ISSUER,
    ANCHORLINE__AUTH__EXTERNAL_IDP__JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
    ANCHORLINE__AUTH__EXTERNAL_IDP__AUDIENCE: AUDIENCE,
  }, 120_000);
const stop = async (engine: ChildEngine): Promise<void> => {
  engine.process.kill('SIGTERM');
  await engine.exited;
};

async function send(port: number, method: string, url: string, body: unknown): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}${url}`, { method, headers: { ...ADMIN, 'content-type': url.startsWith('/fhir') ? 'application/fhir+json' : 'application/json' }, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

/** Patient `id`'s consent: the bench practitioner may read everything for treatment, except mental health. */
function consent(id: string): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${id}` },
    performer: [{ reference: `Patient/${id}` }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: {
      type: 'permit',
      period: { start: '2020-01-01' },
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: 'Practitioner/bench-dr' } }],
      purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
      provision: [{ type: 'deny', securityLabel: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' }] }],
    },
  };
}

const results = new Map<string, number[]>();
let engine = await start(true);
try {
  const mllp = await Promise.all(Array.from({ length: 4 }, () => MllpTestClient.connect(engine.mllpPort)));
  await Promise.all(mllp.map(async (client, c) => {
    for (let i = c; i < PATIENTS; i += mllp.length) await client.request(adtMessage({ controlId: `CR${i}`, mrn: `CRM${i}`, family: 'Consented', given: `P${i}` }));
  }));
  await Promise.all(mllp.map((c) => c.close()));
  const setup = new HttpLoad(engine.httpPort, 4);
  let ids: string[] = [];
  for (let waited = 0; ids.length < PATIENTS && waited < 120; waited++) {
    const bundle = JSON.parse((await setup.get('/fhir/Patient?family=Consented&_count=1000', ADMIN)).body) as { entry?: Array<{ resource: { id: string } }> };
    ids = (bundle.entry ?? []).map((e) => e.resource.id);
    if (ids.length < PATIENTS) await sleep(1000);
  }
  setup.close();
  const account = { username: 'bench-dr', role: 'practitioner', fhirUser: 'Practitioner/bench-dr', displayName: 'Bench practitioner', externalSubject: 'bench-dr' };
  if ((await send(engine.httpPort, 'POST', '/admin/users', account)) !== 201) throw new Error('could not create the practitioner account');
  for (const id of ids) if ((await send(engine.httpPort, 'POST', '/fhir/Consent', consent(id))) !== 201) throw new Error('could not write a consent');
  console.log(`${ids.length} patients, each with a consent; ${CLIENTS} keep-alive clients, ${SECONDS} s a phase, ${os.cpus().length} cores`);

  for (const enforce of [true, false, true, false]) {
    if (engine === undefined) engine = await start(enforce);
    const load = new HttpLoad(engine.httpPort, CLIENTS);
    const label = enforce ? 'consent on' : 'consent off';
    const loadBefore = loadAverage();
    await load.run(CLIENTS, 3, (i) => `/fhir/Patient/${ids[i % ids.length]}`, () => PRACTITIONER);
    const phases: Array<[string, (i: number) => string, Record<string, string>]> = [
      ['read by id, practitioner', (i) => `/fhir/Patient/${ids[i % ids.length]}`, PRACTITIONER],
      ['search by identifier, practitioner', (i) => `/fhir/Patient?identifier=CRM${i % PATIENTS}`, PRACTITIONER],
      ['read by id, system key', (i) => `/fhir/Patient/${ids[i % ids.length]}`, ADMIN],
    ];
    for (const [name, urlFor, headers] of phases) {
      const result = await load.run(CLIENTS, SECONDS, urlFor, () => headers);
      const key = `${name} | ${label}`;
      results.set(key, [...(results.get(key) ?? []), result.requestsPerSecond]);
      console.log(`${label.padEnd(12)} ${describeLoad(name, result)}`);
    }
    console.log(`  load ${loadBefore} -> ${loadAverage()}`);
    load.close();
    await stop(engine);
    engine = undefined as unknown as ChildEngine;
  }
  console.log('\nmean req/s over the phases, and what enforcement costs (1 - on/off):');
  for (const name of ['read by id, practitioner', 'search by identifier, practitioner', 'read by id, system key']) {
    const mean = (list: number[] | undefined): number => (list && list.length > 0 ? list.reduce((a, b) => a + b, 0) / list.length : NaN);
    const on = mean(results.get(`${name} | consent on`));
    const off = mean(results.get(`${name} | consent off`));
    console.log(`  ${name.padEnd(36)} on ${on.toFixed(0).padStart(6)}  off ${off.toFixed(0).padStart(6)}  cost ${((1 - on / off) * 100).toFixed(1)} %`);
  }
} finally {
  if (engine) await stop(engine);
  jwks.close();
  await rm(dataDir, { recursive: true, force: true });
}
