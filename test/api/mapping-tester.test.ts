/**
 * The mapping tester's API: the deployed YAML, dry runs with the active configs and with an edited one (output and
 * diff), deploying an edit to every process the way a rollback does, and an edit that survives the unchanged file
 * being loaded again. Real engine with a config directory, real PostgreSQL.
 */
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { LEGACY_CONFIG_NAME, LEGACY_CONFIG_YAML, LEGACY_FIELDS_FIX, legacyAdt } from '../console/legacy-sender.ts';

let t: TestEngine;
let configDir: string;
let readKey: string;
const SEOUL_YAML = 'name: seoul-his\nmatch:\n  sendingApplication: HIS\ntimeZone: Asia/Seoul\n';

interface Mapping {
  config?: string;
  sha256?: string;
  resources?: Array<Record<string, any>>;
  error?: { code: string; location?: string; detail?: string };
}
interface TestAnswer {
  selected: { name: string; sha256: string } | null;
  deployed: Mapping;
  candidate?: Mapping;
  candidateConfig?: { name: string; sha256: string };
  diff?: { status: string; from: { error?: { code: string } }; to: { error?: unknown }; changes: Array<{ path: string; from?: unknown; to?: unknown }> };
  problems?: Array<{ line: number; key: string; message: string }>;
}

async function post(url: string, body: unknown, key?: string): Promise<Response> {
  return fetch(`${t.httpUrl}${url}`, { method: 'POST', headers: { ...authHeaders(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function dryRun(body: unknown): Promise<TestAnswer> {
  const response = await post('/admin/mappings/test', body);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as TestAnswer;
}

async function ingest(body: string): Promise<number> {
  const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7', accept: 'application/json' }, body });
  return ((await response.json()) as { messageId: number }).messageId;
}

async function message(id: number): Promise<{ state: string; errorCode: string | null; resources: Array<{ resourceType: string; id: string }> }> {
  return (await (await fetch(`${t.httpUrl}/admin/messages/${id}`, { headers: authHeaders() })).json()) as never;
}

async function active(name: string): Promise<{ sha256: string; reason: string }> {
  const listing = (await (await fetch(`${t.httpUrl}/admin/mappings`, { headers: authHeaders() })).json()) as { configs: Array<{ name: string; active: { sha256: string; reason: string } }> };
  return listing.configs.find((c) => c.name === name)!.active;
}

beforeAll(async () => {
  configDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-tester-configs-'));
  await writeFile(path.join(configDir, `${LEGACY_CONFIG_NAME}.yaml`), LEGACY_CONFIG_YAML);
  await writeFile(path.join(configDir, 'seoul-his.yaml'), SEOUL_YAML);
  t = await startTestEngine({ overrides: { mapping: { configDir, pollIntervalMs: 200 } } });
  const made = await post('/admin/api-keys', { name: 'reader', scopes: ['read'] });
  readKey = ((await made.json()) as { key: string }).key;
});
afterAll(async () => {
  await t?.destroy();
  await rm(configDir, { recursive: true, force: true });
});

describe('GET /admin/mappings/{name}/yaml', () => {
  it('gives the file as written when it holds the active version, else the stored content as YAML', async () => {
    const legacy = (await (await fetch(`${t.httpUrl}/admin/mappings/${LEGACY_CONFIG_NAME}/yaml`, { headers: authHeaders() })).json()) as { yaml: string; fromFile: boolean; sha256: string };
    expect(legacy.fromFile).toBe(true);
    expect(legacy.yaml).toBe(LEGACY_CONFIG_YAML);
    expect(legacy.sha256).toBe((await active(LEGACY_CONFIG_NAME)).sha256);
    const fallback = (await (await fetch(`${t.httpUrl}/admin/mappings/default/yaml`, { headers: authHeaders() })).json()) as { yaml: string; fromFile: boolean };
    expect(fallback.fromFile).toBe(false);
    expect(fallback.yaml).toContain('name: default');
    const missing = await fetch(`${t.httpUrl}/admin/mappings/nobody/yaml`, { headers: authHeaders() });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_NOT_FOUND');
  });
});

describe('POST /admin/mappings/test', () => {
  it('shows the config a message selects and its coded failure', async () => {
    const answer = await dryRun({ message: legacyAdt('MT-1', 'MW-100') });
    expect(answer.selected?.name).toBe(LEGACY_CONFIG_NAME);
    expect(answer.deployed.error).toMatchObject({ code: 'ANCHORLINE_ERR_MAPPING_FATAL_ISSUE', location: 'PID-3' });
    expect(answer.candidate).toBeUndefined();
  });

  it('maps a stored message with an edited config and shows the difference', async () => {
    const id = await ingest(legacyAdt('MT-2', 'MW-200'));
    await eventually(async () => (await message(id)).state === 'failed', 20_000, 'the message failed');
    const answer = await dryRun({ messageId: id, config: { name: LEGACY_CONFIG_NAME, yaml: LEGACY_CONFIG_YAML + LEGACY_FIELDS_FIX } });
    expect(answer.deployed.error?.code).toBe('ANCHORLINE_ERR_MAPPING_FATAL_ISSUE');
    expect(answer.candidate?.error).toBeUndefined();
    const patient = answer.candidate?.resources?.find((r) => r.resourceType === 'Patient');
    expect(patient?.identifier?.[0]).toMatchObject({ system: 'https://fhir.midwestgen.example/sid/mrn', value: 'MW-200' });
    expect(answer.candidateConfig?.sha256).not.toBe(answer.selected?.sha256);
    expect(answer.diff?.status).toBe('failed');
    expect(answer.diff?.from.error?.code).toBe('ANCHORLINE_ERR_MAPPING_FATAL_ISSUE');
    expect(answer.diff?.to.error).toBeUndefined();
  });

  it('lists per-resource JSON changes when both versions map', async () => {
    const deployed = (await (await fetch(`${t.httpUrl}/admin/mappings/default/yaml`, { headers: authHeaders() })).json()) as { yaml: string };
    // The built-in default has no identifier systems of its own: the edit gives SNUH's.
    const edited = deployed.yaml.replace('identifierSystems: {}', 'identifierSystems:\n  SNUH: https://fhir.snuh.example/sid/mrn');
    expect(edited).not.toBe(deployed.yaml);
    const answer = await dryRun({ message: adtMessage({ controlId: 'MT-3', mrn: '12345' }), config: { name: 'default', yaml: edited } });
    expect(answer.selected?.name).toBe('default');
    expect(answer.problems).toBeUndefined();
    expect(answer.diff?.status).toBe('changed');
    expect(answer.diff?.changes.some((c) => c.path.startsWith('Patient[0].identifier[0].system') && c.to === 'https://fhir.snuh.example/sid/mrn')).toBe(true);
    const unchanged = await dryRun({ message: adtMessage({ controlId: 'MT-3', mrn: '12345' }), config: { name: 'default', yaml: deployed.yaml } });
    expect(unchanged.diff?.status).toBe('unchanged');
  });

  it('reports an invalid edit, or one that clashes with another config, as located problems', async () => {
    const invalid = await dryRun({ message: legacyAdt('MT-4', 'MW-4'), config: { name: LEGACY_CONFIG_NAME, yaml: LEGACY_CONFIG_YAML + 'fields:\n  Patient.key: PID-9\n' } });
    expect(invalid.candidate).toBeUndefined();
    expect(invalid.problems?.[0]).toMatchObject({ key: 'fields["Patient.key"]', line: 12 });
    const clash = await dryRun({ message: legacyAdt('MT-4', 'MW-4'), config: { name: LEGACY_CONFIG_NAME, yaml: LEGACY_CONFIG_YAML.replace(`sendingApplication: LEGACYADT`, 'sendingApplication: HIS') } });
    expect(clash.problems?.[0]?.key).toBe('match');
    expect(clash.problems?.[0]?.message).toContain('seoul-his');
  });

  it('refuses bad requests with coded errors', async () => {
    for (const body of [{}, { message: 'MSH|x', messageId: 1 }, { message: '' }, { message: 'MSH', config: { name: '../etc', yaml: 'x' } }, { message: 'MSH', config: { name: 'a' } }]) {
      const response = await post('/admin/mappings/test', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    }
    const missing = await post('/admin/mappings/test', { messageId: 99999999 });
    expect(missing.status).toBe(404);
  });
});

describe('POST /admin/mappings/deploy', () => {
  it('refuses an invalid config and one no process loads', async () => {
    const invalid = await post('/admin/mappings/deploy', { name: LEGACY_CONFIG_NAME, yaml: 'name: midwest-legacy\nmatch: {}\n' });
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    const unknown = await post('/admin/mappings/deploy', { name: 'brand-new', yaml: 'name: brand-new\nmatch:\n  sendingApplication: NEWAPP\n' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_NOT_FOUND');
  });

  it('activates the edit everywhere, so a reprocessed message maps, and keeps it when the unchanged file is loaded again', async () => {
    const failedId = await ingest(legacyAdt('MT-5', 'MW-500'));
    await eventually(async () => (await message(failedId)).state === 'failed', 20_000, 'the message failed');
    const fileVersion = await active(LEGACY_CONFIG_NAME);
    expect(fileVersion.reason).toBe('file');

    const response = await post('/admin/mappings/deploy', { name: LEGACY_CONFIG_NAME, yaml: LEGACY_CONFIG_YAML + LEGACY_FIELDS_FIX });
    expect(response.status, await response.clone().text()).toBe(200);
    const deployed = (await response.json()) as { sha256: string; previousSha256: string; changed: boolean };
    expect(deployed).toMatchObject({ previousSha256: fileVersion.sha256, changed: true });
    expect(await active(LEGACY_CONFIG_NAME)).toEqual({ ...(await active(LEGACY_CONFIG_NAME)), sha256: deployed.sha256, reason: 'console' });
    // Deploying the same version again changes nothing.
    expect(((await (await post('/admin/mappings/deploy', { name: LEGACY_CONFIG_NAME, yaml: LEGACY_CONFIG_YAML + LEGACY_FIELDS_FIX })).json()) as { changed: boolean }).changed).toBe(false);

    // The registry switches within its poll interval; then a reprocessed message maps with the edit.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect((await post('/admin/messages/reprocess', { ids: [failedId] })).status).toBe(200);
    const done = await eventually(async () => {
      const now = await message(failedId);
      return now.state === 'done' ? now : undefined;
    }, 20_000, 'the reprocessed message mapped');
    expect(done.resources.some((r) => r.resourceType === 'Patient')).toBe(true);

    // The unchanged file, touched (a new mtime, as an editor's save or a checkout gives it): the edit stays.
    const file = path.join(configDir, `${LEGACY_CONFIG_NAME}.yaml`);
    await writeFile(file, LEGACY_CONFIG_YAML);
    const later = new Date(Date.now() + 5_000);
    await utimes(file, later, later);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await active(LEGACY_CONFIG_NAME)).toMatchObject({ sha256: deployed.sha256, reason: 'console' });
    const nextId = await ingest(legacyAdt('MT-6', 'MW-600'));
    await eventually(async () => (await message(nextId)).state === 'done', 20_000, 'a new message mapped with the edit');

    // A changed file is a new file version: it replaces the edit, as it would replace a rollback.
    await writeFile(file, LEGACY_CONFIG_YAML.replace('legacy HIS, ADT', 'legacy HIS, ADT (revised)'));
    await eventually(async () => (await active(LEGACY_CONFIG_NAME)).reason === 'file', 10_000, 'the changed file deployed');
  });

  it('needs the admin scope', async () => {
    for (const response of [
      await post('/admin/mappings/test', { message: legacyAdt('MT-7', 'MW-7') }, readKey),
      await post('/admin/mappings/deploy', { name: LEGACY_CONFIG_NAME, yaml: LEGACY_CONFIG_YAML }, readKey),
      await fetch(`${t.httpUrl}/admin/mappings/${LEGACY_CONFIG_NAME}/yaml`, { headers: authHeaders(readKey) }),
    ]) {
      expect(response.status).toBe(403);
      expect(response.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_FORBIDDEN');
    }
  });
});

describe('a deployed edit read back as YAML', () => {
  it('keeps every key it was deployed with: the YAML deploys again as the same version', async () => {
    const edited = [
      SEOUL_YAML.trimEnd(),
      'defaultAuthority: SEOULGEN',
      'fatalIssues: [ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED]',
      'zSegments:',
      '  ZPI:',
      '    - field: 2',
      '      to: Patient.extension',
      '      url: https://fhir.seoulgen.example/StructureDefinition/vip',
      '      type: boolean',
      '',
    ].join('\n');
    const deployed = await post('/admin/mappings/deploy', { name: 'seoul-his', yaml: edited });
    expect(deployed.status, await deployed.clone().text()).toBe(200);
    const { sha256 } = (await deployed.json()) as { sha256: string };
    const read = (await (await fetch(`${t.httpUrl}/admin/mappings/seoul-his/yaml`, { headers: authHeaders() })).json()) as { yaml: string; fromFile: boolean };
    expect(read.fromFile).toBe(false);
    for (const key of ['defaultAuthority', 'fatalIssues', 'zSegments']) expect(read.yaml).toContain(`${key}:`);
    const again = await post('/admin/mappings/deploy', { name: 'seoul-his', yaml: read.yaml });
    expect(again.status, await again.clone().text()).toBe(200);
    expect((await again.json()) as { sha256: string; changed: boolean }).toMatchObject({ sha256, changed: false });
  });
});
