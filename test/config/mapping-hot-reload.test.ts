/**
 * Mapping configs in a running engine: a changed file maps the next messages with its new version (and their leaves
 * record it), an invalid change leaves the previous version in use, and a rollback over the admin API brings back
 * the earlier version's behaviour.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtInDefault, parseMappingConfig } from '../../config/mapping-config.ts';
import { adtMessage } from '../support/messages.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { resources } from '../../store/index.ts';

const POLL_MS = 200;

let t: TestEngine;
let dir: string;
let file: string;

function seoulConfig(system: string, extra = ''): string {
  return `name: seoul-his\ndescription: Seoul General HIS\nmatch:\n  sendingApplication: HIS\n  sendingFacility: SEOULGEN\nidentifierSystems:\n  SEOULGEN: ${system}\n${extra}`;
}

function versionOf(text: string): string {
  return parseMappingConfig(text, file, t.config.mapping).version.sha256;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-engine-mappings-'));
  file = path.join(dir, 'seoul-his.yaml');
  await writeFile(file, seoulConfig('https://v1.example/mrn'));
  t = await startTestEngine({ overrides: { mapping: { configDir: dir, pollIntervalMs: POLL_MS } } });
});
afterAll(async () => {
  await t?.destroy();
  await rm(dir, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${t.httpUrl}${url}`, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** Sends an ADT message over HTTP and returns the Patient it made, found by its MRN under any system. */
async function ingest(controlId: string, mrn: string, application = 'HIS', facility = 'SEOULGEN'): Promise<{ patient: Record<string, any>; mappingSha256: string[] }> {
  const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, {
    method: 'POST',
    headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' },
    body: adtMessage({ controlId, mrn, application, facility }),
  });
  expect(response.status).toBe(202);
  const messageId = Number(response.headers.get('x-anchorline-message-id'));
  const patient = await eventually(async () => {
    const row = await t.pool.query<{ id: string }>(
      `SELECT r.id FROM fhir_resource r JOIN fhir_resource_history h ON h.resource_type = r.resource_type AND h.id = r.id
        WHERE r.resource_type = 'Patient' AND h.source_message_id = $1`,
      [messageId],
    );
    // Read through the store: the Patient is sealed under its own key.
    const id = row.rows[0]?.id;
    return id === undefined ? undefined : ((await resources.readCurrent(t.pool, 'Patient', id))?.content as Record<string, any> | undefined);
  }, 20_000, `the Patient of ${controlId}`);
  const leaves = await t.pool.query<{ sha: string }>(`SELECT DISTINCT preimage->>'mappingSha256' AS sha FROM ledger_leaf WHERE resource_id = $1`, [patient.id]);
  return { patient, mappingSha256: leaves.rows.map((r) => r.sha) };
}

async function activeVersion(name: string): Promise<string | undefined> {
  const rows = await t.pool.query<{ sha256: string }>('SELECT sha256 FROM mapping_deployment WHERE name = $1 AND active', [name]);
  return rows.rows[0]?.sha256;
}

/** Long enough for every registry to have read the database (and, after a file change, the directory) again. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, POLL_MS * 4));

describe('mapping configs in a running engine', () => {
  let v1: string;
  let v2: string;

  it('maps with the config the sender matches, and the built-in default otherwise', async () => {
    v1 = versionOf(seoulConfig('https://v1.example/mrn'));
    expect(await activeVersion('seoul-his')).toBe(v1);
    const seoul = await ingest('HR-1', 'H1');
    expect(seoul.patient.identifier[0].system).toBe('https://v1.example/mrn');
    expect(seoul.mappingSha256).toEqual([v1]);
    const other = await ingest('HR-2', 'H2', 'LAB', 'ELSEWHERE');
    expect(other.patient.identifier[0].system).toBe('urn:anchorline:authority:ELSEWHERE');
    expect(other.mappingSha256).toEqual([builtInDefault(t.config.mapping).sha256]);
  });

  it('maps new messages with a changed file, without a restart', async () => {
    const text = seoulConfig('https://v2.example/mrn');
    v2 = versionOf(text);
    await writeFile(file, text);
    await eventually(async () => (await activeVersion('seoul-his')) === v2, 10_000, 'the new version deployed');
    await settle();
    const seoul = await ingest('HR-3', 'H3');
    expect(seoul.patient.identifier[0].system).toBe('https://v2.example/mrn');
    expect(seoul.mappingSha256).toEqual([v2]);
    // What the leaves name is stored, so an audit can re-hash it.
    const stored = await t.pool.query('SELECT 1 FROM mapping_config WHERE sha256 = $1', [v2]);
    expect(stored.rowCount).toBe(1);
  });

  it('keeps the previous version when the file becomes invalid', async () => {
    await writeFile(file, seoulConfig('https://v3.example/mrn', 'timeZone: Mars/Olympus\n'));
    await settle();
    await settle();
    expect(await activeVersion('seoul-his')).toBe(v2);
    const seoul = await ingest('HR-4', 'H4');
    expect(seoul.patient.identifier[0].system).toBe('https://v2.example/mrn');
    expect(seoul.mappingSha256).toEqual([v2]);
  });

  it('restores an earlier version on a rollback over the admin API', async () => {
    const refused = await api('POST', '/admin/mappings/seoul-his/rollback', { sha256: 'f'.repeat(64) });
    expect(refused.status).toBe(404);
    expect(refused.body.resourceType).toBe('OperationOutcome');

    const rollback = await api('POST', '/admin/mappings/seoul-his/rollback', { sha256: v1 });
    expect(rollback).toEqual({ status: 200, body: { name: 'seoul-his', previousSha256: v2, sha256: v1, changed: true } });
    await settle();
    const seoul = await ingest('HR-5', 'H5');
    expect(seoul.patient.identifier[0].system).toBe('https://v1.example/mrn');
    expect(seoul.mappingSha256).toEqual([v1]);

    const listing = await api('GET', '/admin/mappings');
    expect(listing.status).toBe(200);
    const config = (listing.body.configs as Array<Record<string, any>>).find((c) => c.name === 'seoul-his')!;
    expect(config.active).toMatchObject({ sha256: v1, reason: 'rollback', content: { identifierSystems: { SEOULGEN: 'https://v1.example/mrn' } } });
    expect(config.history.map((h: Record<string, any>) => [h.sha256, h.reason, h.active])).toEqual([
      [v1, 'file', false],
      [v2, 'file', false],
      [v1, 'rollback', true],
    ]);
    expect((listing.body.configs as Array<Record<string, any>>).map((c) => c.name).sort()).toEqual(['default', 'seoul-his']);
  });

  it('deploys the file again once it is fixed, over the rollback', async () => {
    const text = seoulConfig('https://v3.example/mrn');
    await writeFile(file, text);
    await eventually(async () => (await activeVersion('seoul-his')) === versionOf(text), 10_000, 'the fixed file deployed');
    await settle();
    const seoul = await ingest('HR-6', 'H6');
    expect(seoul.patient.identifier[0].system).toBe('https://v3.example/mrn');
  });

  it('needs the admin scope for mapping administration', async () => {
    const response = await fetch(`${t.httpUrl}/admin/mappings`);
    expect(response.status).toBe(401);
  });
});
