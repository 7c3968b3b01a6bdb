/**
 * Operating the engine: /metrics (Prometheus text), /livez, /readyz, /admin/stats, and the worker-only process's own
 * metrics listener, against a real engine on real PostgreSQL (and BullMQ on Redis for the queue counts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage, segment } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { testRedisUrl } from '../support/db.ts';
import { startTestRedis } from '../support/redis.ts';
import { NotReady, Readiness } from '../../observability/index.ts';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 300 } } });
});
afterAll(async () => {
  await t?.destroy();
});

/** The value of one sample of the exposition, e.g. sample(text, 'anchorline_queue_jobs', { state: 'waiting' }). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

async function metricsText(url = t.httpUrl, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return response.text();
}

function unsupportedMessage(controlId: string): string {
  return [segment('MSH', { 2: '^~\\&', 3: 'EMR', 4: 'SNUH', 7: '20261121093000', 9: 'QBP^Q22', 10: controlId, 11: 'P', 12: '2.5.1' }), segment('PID', { 1: '1', 3: 'U1^^^SNUH^MR' })].join('\r') + '\r';
}

describe('GET /metrics', () => {
  it('counts messages by protocol and outcome, refusals and mapping errors by code, and ACK latency', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    expect(hl7Field(await client.request(adtMessage({ controlId: 'M-1', mrn: 'M100' })), 'MSA', 1)).toBe('AA');
    expect(hl7Field(await client.request(adtMessage({ controlId: 'M-1', mrn: 'M100' })), 'MSA', 1)).toBe('AA');
    // Accepted at intake, fails mapping (a merge without its MRG segment).
    expect(hl7Field(await client.request(adtMessage({ controlId: 'M-2', mrn: 'M200' }).replace('ADT^A01^ADT_A01', 'ADT^A40^ADT_A39')), 'MSA', 1)).toBe('AA');
    expect(hl7Field(await client.request(unsupportedMessage('M-3')), 'MSA', 1)).toBe('AR');
    await client.close();
    const http = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: adtMessage({ controlId: 'M-4', mrn: 'M400' }) });
    expect(http.status).toBe(202);
    // Four rows were written just now (the duplicate wrote none).
    const stats = (await (await fetch(`${t.httpUrl}/admin/stats`, { headers: authHeaders() })).json()) as any;
    expect(stats.messages.receivedLastMinute).toBe(4);
    expect(stats.messages.perSecond).toBeCloseTo(4 / 60, 10);

    const text = await eventually(async () => {
      const body = await metricsText();
      return sample(body, 'anchorline_mapping_errors_total', { code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD' }) === 1 ? body : undefined;
    });
    expect(sample(text, 'anchorline_messages_received_total', { protocol: 'hl7v2-mllp', outcome: 'stored' })).toBe(2);
    expect(sample(text, 'anchorline_messages_received_total', { protocol: 'hl7v2-mllp', outcome: 'duplicate' })).toBe(1);
    expect(sample(text, 'anchorline_messages_received_total', { protocol: 'hl7v2-mllp', outcome: 'rejected' })).toBe(1);
    expect(sample(text, 'anchorline_messages_received_total', { protocol: 'hl7v2-http', outcome: 'stored' })).toBe(1);
    expect(sample(text, 'anchorline_messages_refused_total', { protocol: 'hl7v2-mllp', code: 'ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE' })).toBe(1);
    expect(sample(text, 'anchorline_ack_latency_seconds_count', { protocol: 'hl7v2-mllp' })).toBe(4);
    expect(sample(text, 'anchorline_ack_latency_seconds_count', { protocol: 'hl7v2-http' })).toBe(1);
    expect(sample(text, 'anchorline_ack_latency_seconds_bucket', { protocol: 'hl7v2-mllp', le: '30' })).toBe(4);
    // State read at the scrape, and the process's own metrics on the engine's registry.
    for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(sample(text, 'anchorline_queue_jobs', { state })).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'anchorline_inbox_backlog_messages')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'anchorline_anchor_unbatched_leaves')).toBeGreaterThanOrEqual(0);
    expect(text).toContain('anchorline_anchor_oldest_unbatched_leaf_age_seconds');
    expect(sample(text, 'anchorline_anchor_unanchored_batches')).toBeNaN();
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('reports anchoring lag once batches close', async () => {
    const text = await eventually(async () => {
      const body = await metricsText();
      const since = sample(body, 'anchorline_anchor_seconds_since_last_batch');
      return since !== undefined && Number.isFinite(since) ? body : undefined;
    });
    expect(sample(text, 'anchorline_anchor_seconds_since_last_batch')).toBeLessThan(60);
  });
});

describe('probes', () => {
  it('answers /livez and /readyz without a key', async () => {
    const live = await fetch(`${t.httpUrl}/livez`);
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'ok' });
    const ready = await fetch(`${t.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: { ready: true }, queue: { ready: true }, mappings: { ready: true }, listeners: { ready: true } },
    });
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
  });

  it('names what is not ready, and gives up on a check that does not answer', async () => {
    const readiness = new Readiness();
    readiness.add('database', () => undefined);
    readiness.add('listeners', () => {
      throw new NotReady('not listening: mllp');
    });
    readiness.add('queue', () => new Promise(() => undefined));
    readiness.add('store', async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432 password=secret'), { code: 'ECONNREFUSED' });
    });
    const report = await readiness.check(100);
    expect(report).toEqual({
      ready: false,
      checks: {
        database: { ready: true },
        listeners: { ready: false, reason: 'not listening: mllp' },
        queue: { ready: false, reason: 'no answer within 100 ms' },
        // The code, never the driver's message.
        store: { ready: false, reason: 'ECONNREFUSED' },
      },
    });
  });

  it('answers 503 naming the queue when Redis is gone, while /livez and /metrics still answer', async () => {
    let redis = await startTestRedis();
    let killed = false;
    const other = await startTestEngine({ redisUrl: redis.url, overrides: { observability: { readinessTimeoutMs: 500 }, mllp: { enabled: false }, dicom: { enabled: false } } });
    try {
      expect((await fetch(`${other.httpUrl}/readyz`)).status).toBe(200);
      await redis.kill();
      killed = true;
      const ready = await fetch(`${other.httpUrl}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as any;
      expect(body.status).toBe('not-ready');
      expect(body.checks.database).toEqual({ ready: true });
      expect(body.checks.queue).toEqual({ ready: false, reason: expect.any(String) });
      expect((await fetch(`${other.httpUrl}/livez`)).status).toBe(200);
      const text = await metricsText(other.httpUrl);
      expect(sample(text, 'anchorline_metrics_collect_errors_total', { source: 'queue' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'anchorline_inbox_backlog_messages')).toBe(0);

      // Ready again once Redis is back on its port.
      redis = await startTestRedis([], redis.port);
      killed = false;
      await eventually(async () => (await fetch(`${other.httpUrl}/readyz`)).status === 200, 60_000, 'ready again');
    } finally {
      // BullMQ closes cleanly only with its Redis there.
      if (killed) redis = await startTestRedis([], redis.port);
      await other.destroy();
      await redis.stop();
    }
  }, 120_000);
});

describe('GET /admin/stats', () => {
  it('needs an admin key', async () => {
    expect((await fetch(`${t.httpUrl}/admin/stats`)).status).toBe(401);
  });

  it('reports message states, throughput per minute, queue depth, errors and anchoring', async () => {
    const stats = await eventually(async () => {
      const response = await fetch(`${t.httpUrl}/admin/stats`, { headers: authHeaders() });
      expect(response.status).toBe(200);
      const body = (await response.json()) as any;
      return body.messages.byState.done >= 2 && body.anchor.lastBatchNumber !== null && body.anchor.unbatchedLeaves === 0 ? body : undefined;
    });
    expect(Object.keys(stats).sort()).toEqual(['anchor', 'at', 'errors', 'messages', 'queue', 'throughput']);
    expect(new Date(stats.at).toISOString()).toBe(stats.at);
    expect(stats.messages.receivedLastMinute).toBeGreaterThanOrEqual(0);
    expect(stats.messages.perSecond).toBeCloseTo(stats.messages.receivedLastMinute / 60, 10);
    expect(stats.messages.byState).toEqual({ queued: 0, done: 2, failed: 1, rejected: 1 });

    expect(stats.throughput).toHaveLength(30);
    const minutes = stats.throughput.map((row: any) => Date.parse(row.minute));
    for (let i = 1; i < minutes.length; i++) expect(minutes[i] - minutes[i - 1]).toBe(60_000);
    expect(Object.keys(stats.throughput[0]).sort()).toEqual(['done', 'failed', 'minute', 'received']);
    const total = (key: string): number => stats.throughput.reduce((sum: number, row: any) => sum + row[key], 0);
    expect(total('received')).toBe(4);
    expect(total('done')).toBe(2);
    expect(total('failed')).toBe(1);

    expect(stats.queue).toEqual({ driver: 'postgres', waiting: expect.any(Number), active: expect.any(Number), delayed: expect.any(Number), failed: expect.any(Number), backlog: 0 });
    expect(stats.errors).toEqual(
      expect.arrayContaining([
        { code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD', count: 1, lastAt: expect.any(String) },
        { code: 'ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE', count: 1, lastAt: expect.any(String) },
      ]),
    );
    expect(stats.errors).toHaveLength(2);
    expect(stats.anchor).toEqual({
      unbatchedLeaves: 0,
      oldestUnbatchedAgeSeconds: null,
      lastBatchNumber: expect.any(Number),
      lastBatchClosedAt: expect.any(String),
      chain: null,
    });
  });

  it('counts a message still waiting for mapping in the backlog and the oldest unbatched leaf', async () => {
    // A worker-less intake node on its own schema: nothing maps, so the message stays queued.
    const intakeOnly = await startTestEngine({ overrides: { workers: { enabled: false }, dicom: { enabled: false } } });
    try {
      const client = await MllpTestClient.connect(intakeOnly.mllpPort);
      await client.request(adtMessage({ controlId: 'Q-1', mrn: 'Q100' }));
      await client.close();
      await intakeOnly.pool.query(
        `INSERT INTO ledger_leaf (resource_type, resource_id, version_id, preimage, leaf_hash, created_at) VALUES ('Patient', 'x', 1, '{}', '\\x00', now() - interval '90 seconds')`,
      );
      const stats = (await (await fetch(`${intakeOnly.httpUrl}/admin/stats`, { headers: authHeaders() })).json()) as any;
      expect(stats.messages.byState).toEqual({ queued: 1, done: 0, failed: 0, rejected: 0 });
      expect(stats.queue.backlog).toBe(1);
      expect(stats.queue.waiting).toBe(1);
      expect(stats.anchor.unbatchedLeaves).toBe(1);
      expect(stats.anchor.oldestUnbatchedAgeSeconds).toBeGreaterThanOrEqual(90);
      expect(stats.anchor.lastBatchNumber).toBeNull();
      const text = await metricsText(intakeOnly.httpUrl);
      expect(sample(text, 'anchorline_inbox_backlog_messages')).toBe(1);
      expect(sample(text, 'anchorline_anchor_oldest_unbatched_leaf_age_seconds')).toBeGreaterThanOrEqual(90);
      expect(sample(text, 'anchorline_anchor_seconds_since_last_batch')).toBeNaN();
      // No mapping configs are loaded in an intake-only node, so readiness does not ask for them.
      expect(((await (await fetch(`${intakeOnly.httpUrl}/readyz`)).json()) as any).checks).not.toHaveProperty('mappings');
    } finally {
      await intakeOnly.destroy();
    }
  });
});

describe('configuration', () => {
  it('asks for an admin key on /metrics when observability.metricsRequireAdminKey is set', async () => {
    const locked = await startTestEngine({ overrides: { observability: { metricsRequireAdminKey: true }, mllp: { enabled: false }, dicom: { enabled: false } } });
    try {
      expect((await fetch(`${locked.httpUrl}/metrics`)).status).toBe(401);
      expect(await metricsText(locked.httpUrl, authHeaders())).toContain('anchorline_messages_received_total');
      expect((await fetch(`${locked.httpUrl}/livez`)).status).toBe(200);
    } finally {
      await locked.destroy();
    }
  });

  it('serves /metrics, /livez and /readyz from a worker-only process on observability.workerPort, with BullMQ queue counts', async () => {
    const worker = await startTestEngine({ role: 'worker', redisUrl: testRedisUrl(), overrides: { observability: { workerPort: 0 } } });
    try {
      const port = worker.engine.operationsPort;
      expect(port).toBeGreaterThan(0);
      const url = `http://127.0.0.1:${port}`;
      const text = await metricsText(url);
      expect(sample(text, 'anchorline_queue_jobs', { state: 'waiting' })).toBe(0);
      expect(text).toContain('anchorline_mapping_errors_total');
      expect((await fetch(`${url}/livez`)).status).toBe(200);
      const ready = (await (await fetch(`${url}/readyz`)).json()) as any;
      expect(ready).toEqual({ status: 'ready', checks: { database: { ready: true }, queue: { ready: true }, mappings: { ready: true } } });
      expect((await fetch(`${url}/admin/stats`)).status).toBe(404);
    } finally {
      await worker.destroy();
    }
  });
});
