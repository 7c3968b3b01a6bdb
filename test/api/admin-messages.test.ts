/**
 * The message browser's API: search filters and paging, one message in detail, reprocessing many at once, coded
 * 400s for bad input and 403 for a key without the admin scope. Real engine, real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LEGACY_CONFIG_NAME, LEGACY_CONFIG_YAML, legacyAdt } from '../console/legacy-sender.ts';

let t: TestEngine;
let readKey: string;
let configDir: string;
const ids = { emr1: 0, emr2: 0, lab: 0, legacy1: 0, legacy2: 0, rejected: 0 };

interface Envelope {
  id: number;
  sender: string;
  controlId: string | null;
  state: string;
  errorCode: string | null;
  protocol: string;
  messageType: string | null;
  attempts: number;
  processedAt: string | null;
  [key: string]: unknown;
}
interface Page {
  total: number;
  limit: number;
  offset: number;
  messages: Envelope[];
}

async function ingest(body: string): Promise<number> {
  const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7', accept: 'application/json' }, body });
  return ((await response.json()) as { messageId: number }).messageId;
}

async function search(query: string, key?: string): Promise<Response> {
  return fetch(`${t.httpUrl}/admin/messages${query}`, { headers: authHeaders(key) });
}

async function page(query: string): Promise<Page> {
  const response = await search(query);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as Page;
}

async function state(id: number): Promise<Envelope> {
  return (await (await fetch(`${t.httpUrl}/admin/messages/${id}`, { headers: authHeaders() })).json()) as Envelope;
}

beforeAll(async () => {
  // The legacy sender's config makes its PID-2 fallback fatal, so its messages fail until the config reads PID-2.
  configDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-admin-configs-'));
  await writeFile(path.join(configDir, `${LEGACY_CONFIG_NAME}.yaml`), LEGACY_CONFIG_YAML);
  t = await startTestEngine({ overrides: { sweeper: { intervalMs: 60_000, staleAfterMs: 60_000 }, mapping: { configDir } } });
  const made = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'reader', scopes: ['read'] }) });
  readKey = ((await made.json()) as { key: string }).key;
  ids.emr1 = await ingest(adtMessage({ controlId: 'AM-EMR-1', mrn: 'AM1001', application: 'EMR', facility: 'SNUH' }));
  ids.emr2 = await ingest(adtMessage({ controlId: 'AM-EMR-2', mrn: 'AM1002', application: 'EMR', facility: 'SNUH', event: 'A08' }));
  ids.lab = await ingest(adtMessage({ controlId: 'AM-LAB-1', mrn: 'AM1003', application: 'LAB', facility: 'BUSAN' }));
  ids.legacy1 = await ingest(legacyAdt('AM-LEG-1', 'MW-1'));
  ids.legacy2 = await ingest(legacyAdt('AM-LEG-2', 'MW-2'));
  // No MSH-9: rejected at intake.
  ids.rejected = await ingest('MSH|^~\\&|EMR|SNUH|ANCHORLINE|HUB|20261121093000|||AM-REJ-1|P|2.5.1\rPID|1||X^^^SNUH^MR\r');
  await eventually(async () => {
    const pending = await page('?state=queued');
    return pending.total === 0;
  }, 30_000, 'every message mapped');
});
afterAll(async () => {
  await t?.destroy();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

describe('GET /admin/messages', () => {
  it('lists envelopes newest first, without raw bodies', async () => {
    const all = await page('');
    expect(all.total).toBe(6);
    expect(all.messages.map((m) => m.id)).toEqual([...all.messages.map((m) => m.id)].sort((a, b) => b - a));
    for (const message of all.messages) {
      expect(message).not.toHaveProperty('rawBase64');
      expect(message).not.toHaveProperty('raw');
      expect(message).not.toHaveProperty('ack');
    }
  });

  it('filters by sender, either part or both, and by control id', async () => {
    expect((await page('?sender=EMR')).messages.map((m) => m.id).sort()).toEqual([ids.emr1, ids.emr2].sort());
    expect((await page('?sender=SNUH')).messages.map((m) => m.id).sort()).toEqual([ids.emr1, ids.emr2].sort());
    expect((await page(`?sender=${encodeURIComponent('LAB|BUSAN')}`)).messages.map((m) => m.id)).toEqual([ids.lab]);
    expect((await page('?controlId=AM-LEG-2')).messages.map((m) => m.id)).toEqual([ids.legacy2]);
  });

  it('filters by state (one or several), error code, protocol, message type and time', async () => {
    const failed = await page('?state=failed');
    expect(failed.messages.map((m) => m.id).sort()).toEqual([ids.legacy1, ids.legacy2].sort());
    expect(failed.messages.every((m) => m.errorCode === 'ANCHORLINE_ERR_MAPPING_FATAL_ISSUE')).toBe(true);
    expect((await page('?state=failed,rejected')).total).toBe(3);
    expect((await page('?state=rejected')).messages.map((m) => m.id)).toEqual([ids.rejected]);
    expect((await page('?errorCode=ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE')).messages.map((m) => m.id)).toEqual([ids.rejected]);
    expect((await page('?protocol=hl7v2-http')).total).toBe(6);
    expect((await page('?protocol=hl7v2-mllp')).total).toBe(0);
    expect((await page(`?messageType=${encodeURIComponent('ADT^A08')}`)).messages.map((m) => m.id)).toEqual([ids.emr2]);
    expect((await page('?messageType=ADT')).total).toBe(5);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const past = new Date(Date.now() - 3_600_000).toISOString();
    expect((await page(`?receivedFrom=${future}`)).total).toBe(0);
    expect((await page(`?receivedFrom=${past}&receivedTo=${future}`)).total).toBe(6);
    expect((await page(`?sender=EMR&state=done&receivedFrom=${past}`)).total).toBe(2);
  });

  it('pages with limit and offset', async () => {
    const first = await page('?limit=4');
    const second = await page('?limit=4&offset=4');
    expect(first.total).toBe(6);
    expect(second.total).toBe(6);
    expect(first.messages).toHaveLength(4);
    expect(second.messages).toHaveLength(2);
    const seen = [...first.messages, ...second.messages].map((m) => m.id);
    expect(new Set(seen).size).toBe(6);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
  });

  it('refuses bad input with a coded 400', async () => {
    for (const query of ['?state=lost', '?colour=red', '?limit=0', '?limit=501', '?limit=ten', '?receivedFrom=yesterday', '?offset=-1']) {
      const response = await search(query);
      expect(response.status, query).toBe(400);
      expect(response.headers.get('x-anchorline-error'), query).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    }
  });
});

describe('GET /admin/messages/{id}', () => {
  it('keeps its shape and adds the decoded text, the ACK and the resources written', async () => {
    const detail = (await (await fetch(`${t.httpUrl}/admin/messages/${ids.emr1}`, { headers: authHeaders() })).json()) as Record<string, unknown>;
    for (const key of ['id', 'protocol', 'source', 'sender', 'controlId', 'messageType', 'disposition', 'state', 'attempts', 'errorCode', 'errorDetail', 'ackCode', 'charset', 'rawSha256', 'rawSize', 'rawBase64', 'receivedAt', 'processedAt']) {
      expect(detail, key).toHaveProperty(key);
    }
    expect(detail.state).toBe('done');
    expect(String(detail.text)).toMatch(/^MSH\|\^~\\&\|EMR\|SNUH/);
    expect(Buffer.from(String(detail.rawBase64), 'base64').toString('utf8')).toBe(detail.text);
    expect(String(detail.ackText)).toContain('MSA|AA|AM-EMR-1');
    const written = detail.resources as Array<{ resourceType: string; versionId: number }>;
    expect(written.map((r) => r.resourceType)).toContain('Patient');
  });

  it('answers 400 and 404 with codes', async () => {
    expect((await fetch(`${t.httpUrl}/admin/messages/abc`, { headers: authHeaders() })).headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    const missing = await fetch(`${t.httpUrl}/admin/messages/99999999`, { headers: authHeaders() });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_NOT_FOUND');
  });
});

describe('POST /admin/messages/reprocess', () => {
  async function reprocess(body: unknown, key?: string): Promise<Response> {
    return fetch(`${t.httpUrl}/admin/messages/reprocess`, { method: 'POST', headers: { ...authHeaders(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  it('requeues many accepted messages, skips rejected and unknown ones, and maps them again', async () => {
    const before = await state(ids.legacy1);
    const response = await reprocess({ ids: [ids.legacy1, ids.legacy2, ids.emr1, ids.rejected, 99999999, ids.legacy1] });
    expect(response.status).toBe(200);
    const outcome = (await response.json()) as { requeued: number[]; skipped: Array<{ id: number; reason: string }>; enqueued: boolean };
    expect(outcome.requeued).toEqual([ids.legacy1, ids.legacy2, ids.emr1].sort((a, b) => a - b));
    expect(outcome.skipped).toEqual(
      expect.arrayContaining([
        { id: ids.rejected, reason: 'rejected-at-intake' },
        { id: 99999999, reason: 'not-found' },
      ]),
    );
    expect(outcome.enqueued).toBe(true);
    // The sweeper is slowed to a minute here: only the enqueue can have mapped them again this soon.
    const again = await eventually(async () => {
      const now = await state(ids.legacy1);
      return now.state === 'failed' && now.processedAt !== before.processedAt ? now : undefined;
    }, 20_000, 'the failed message mapped again');
    expect(again.attempts).toBe(1);
    expect(again.errorCode).toBe('ANCHORLINE_ERR_MAPPING_FATAL_ISSUE');
    await eventually(async () => (await state(ids.emr1)).state === 'done', 20_000, 'the done message mapped again');
    expect((await state(ids.rejected)).state).toBe('rejected');
  });

  it('refuses bad bodies with a coded 400', async () => {
    for (const body of [{}, { ids: [] }, { ids: ['x'] }, { ids: [0] }, { ids: [1.5] }, { ids: Array.from({ length: 1001 }, (_, i) => i + 1) }, { id: 1 }]) {
      const response = await reprocess(body);
      expect(response.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(response.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    }
  });
});

describe('scopes', () => {
  it('answers 403 to a key without the admin scope', async () => {
    for (const response of [
      await search('', readKey),
      await fetch(`${t.httpUrl}/admin/messages/${ids.emr1}`, { headers: authHeaders(readKey) }),
      await fetch(`${t.httpUrl}/admin/messages/reprocess`, { method: 'POST', headers: { ...authHeaders(readKey), 'content-type': 'application/json' }, body: JSON.stringify({ ids: [ids.emr1] }) }),
    ]) {
      expect(response.status).toBe(403);
      expect(response.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_FORBIDDEN');
    }
    expect((await search('')).status).toBe(200);
    expect((await fetch(`${t.httpUrl}/admin/messages`)).status).toBe(401);
  });
});
