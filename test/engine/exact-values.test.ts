/**
 * Exact values, end to end (issue 12, item 6): an ORU whose OBX-5 values are `5.40` and `12345678901234567890` goes in
 * over MLLP, and the Observations keep those values as sent, byte for byte: in the stored jsonb, in the FHIR API's
 * response bodies, and in what the provenance leaf commits to, so that the proof bundle verifies (in-process and with
 * `anchorline verify`) against the resource exactly as served, and not against the same resource with `5.4`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson, verifyBundle } from '../../anchor/index.ts';
import { auditLedger, resources } from '../../store/index.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let t: TestEngine;
let dir: string;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 } } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-exact-'));
});
afterAll(async () => {
  await t?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const LONG = '12345678901234567890';

function oru(controlId: string): string {
  return [
    `MSH|^~\\&|LIS|EXACTLAB|ANCHORLINE|ANCHORLINE|20240903101530||ORU^R01^ORU_R01|${controlId}|P|2.5.1|||AL|NE`,
    'PID|1||EXACT-1^^^EXACTLAB^MR||Park^Jiwoo||19800101|F',
    'OBR|1|ORD-EX-1^OCS|LAB-EX-1^LIS|CHEM^Chemistry^L|||20240903081000|||||||20240903083000||||||||20240903101500||CH|F',
    'OBX|1|NM|2345-7^Glucose [Mass/volume] in Serum or Plasma^LN|1|5.40|mmol/L|3.90-6.10|N|||F|||20240903095200',
    `OBX|2|NM|EXACT-COUNT^Particle count^L|1|${LONG}|/L||N|||F|||20240903095200`,
  ].join('\r');
}

/** The response body as sent (text), and parsed losslessly. */
async function getText(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, text: await response.text() };
}

async function observationId(code: string): Promise<string> {
  return eventually(async () => {
    const { text } = await getText(`/fhir/Observation?code=${encodeURIComponent(code)}`);
    return (parseJson(text) as { entry?: Array<{ resource: { id: string } }> }).entry?.[0]?.resource.id;
  }, 20_000, `Observation ${code}`);
}

function cliVerify(bundleFile: string, resourceFile: string): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), 'verify', bundleFile, '--resource', resourceFile], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout };
}

describe('exact decimal values', () => {
  it('keeps 5.40 and 12345678901234567890 as sent in storage, in the API and in the proof', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(oru('EXACT-1'));
    const glucose = await observationId('2345-7');
    const count = await observationId('EXACT-COUNT');

    // The API answers with the values as sent, byte for byte: read, vread and search.
    const served = await getText(`/fhir/Observation/${glucose}`);
    expect(served.status).toBe(200);
    // (jsonb orders an object's members by name length, so `value` need not come first.)
    expect(served.text).toMatch(/"valueQuantity":\{[^{}]*"value":5\.40[,}]/);
    expect(served.text).toMatch(/"low":\{[^{}]*"value":3\.90[,}]/);
    expect(served.text).toMatch(/"high":\{[^{}]*"value":6\.10[,}]/);
    expect((await getText(`/fhir/Observation/${glucose}/_history/1`)).text).toMatch(/"value":5\.40[,}]/);
    expect((await getText(`/fhir/Observation/${count}`)).text).toMatch(new RegExp(`"value":${LONG}[,}]`));
    expect((await getText(`/fhir/Observation?code=EXACT-COUNT`)).text).toMatch(new RegExp(`"value":${LONG}[,}]`));

    // The stored version holds them, as the store's reader opens it (sealed under the patient's key, or jsonb,
    // whose numeric keeps the scale and every digit): the lossless reader gives numbers back as written.
    const stored = new Map<string, string>();
    for (const id of [glucose, count]) {
      const version = await resources.readVersion(t.pool, 'Observation', id, 1);
      stored.set(id, String((version!.content.valueQuantity as { value: unknown }).value));
    }
    expect(stored).toEqual(new Map([[glucose, '5.40'], [count, LONG]]));

    // The proof bundle of that version verifies against the resource exactly as served, in-process and with the CLI.
    const bundleText = await eventually(async () => {
      const { status, text } = await getText(`/proofs/Observation/${glucose}/_history/1`);
      return status === 200 ? text : undefined;
    }, 20_000, 'proof bundle');
    const good = verifyBundle(parseJson(bundleText), { resource: parseJson(served.text) });
    expect(good.checks.filter((check) => !check.ok)).toEqual([]);
    const bundleFile = path.join(dir, 'bundle.json');
    const resourceFile = path.join(dir, 'resource.json');
    await writeFile(bundleFile, bundleText);
    await writeFile(resourceFile, served.text);
    const cli = cliVerify(bundleFile, resourceFile);
    expect(cli.stdout).toContain('PASS resource-hash');
    expect(cli.status).toBe(0);

    // The leaf commits to 5.40, not to 5.4: the same resource with the precision dropped does not verify.
    const rounded = served.text.replace(/"value":5\.40(?=[,}])/, '"value":5.4');
    expect(rounded).not.toBe(served.text);
    expect(verifyBundle(parseJson(bundleText), { resource: JSON.parse(served.text) }).checks.find((check) => check.name === 'resource-hash')?.ok).toBe(false);
    await writeFile(resourceFile, rounded);
    const cliRounded = cliVerify(bundleFile, resourceFile);
    expect(cliRounded.stdout).toMatch(/FAIL resource-hash/);
    expect(cliRounded.status).toBe(1);

    // The long number's version verifies too, and the auditor's database check agrees with every leaf.
    const countBundle = await eventually(async () => {
      const { status, text } = await getText(`/proofs/Observation/${count}/_history/1`);
      return status === 200 ? text : undefined;
    }, 20_000, 'proof bundle');
    const countServed = (await getText(`/fhir/Observation/${count}/_history/1`)).text;
    expect(verifyBundle(parseJson(countBundle), { resource: parseJson(countServed) }).ok).toBe(true);
    expect(verifyBundle(parseJson(countBundle), { resource: JSON.parse(countServed) }).ok).toBe(false);
    const audit = await auditLedger(t.pool);
    expect(audit.findings).toEqual([]);

    // The same message again changes nothing: the stored 5.40 equals the newly mapped 5.40, so no version 2.
    await client.request(oru('EXACT-2'));
    await client.close();
    await eventually(async () => {
      const done = await t.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id = 'EXACT-2' AND state = 'done'`);
      return done.rows[0].n === 1;
    }, 20_000, 'the second message mapped');
    const versions = await t.pool.query(`SELECT max(version_id) AS v FROM fhir_resource_history WHERE resource_type = 'Observation' AND id = $1`, [glucose]);
    expect(versions.rows[0].v).toBe(1);
  });
});
