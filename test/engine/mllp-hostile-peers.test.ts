/**
 * The MLLP listener against hostile and broken peers, on a real engine: slow connections from one peer cannot lock out
 * another sender, a frame that never ends is cut at mllp.frameTimeoutMs, stray framing bytes never produce an answer
 * that a sender pairing replies in order would take for the answer to its next message, and a row the store refuses
 * fails alone, not the group commit it shares with other senders' messages.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMllpFrame } from '../../adapters/mllp/framer.ts';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { inbox } from '../../store/index.ts';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

const engines: TestEngine[] = [];
const clients: MllpTestClient[] = [];
afterAll(async () => {
  for (const c of clients) await c.close();
  for (const e of engines) await e.destroy();
});

async function engine(mllp: Record<string, unknown>): Promise<TestEngine> {
  const t = await startTestEngine({ overrides: { mllp } });
  engines.push(t);
  return t;
}

async function connect(t: TestEngine, from = '127.0.0.1'): Promise<MllpTestClient> {
  const client = await MllpTestClient.connect(t.mllpPort, '127.0.0.1', from);
  clients.push(client);
  return client;
}

async function closedWithin(client: MllpTestClient, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !client.closed) await new Promise((r) => setTimeout(r, 20));
  return client.closed;
}

/** Sends one byte of `bytes` every `everyMs` until stopped: a peer that is never silent and never finishes. */
function trickle(client: MllpTestClient, bytes: Buffer, everyMs: number): () => void {
  let at = 0;
  const timer = setInterval(() => {
    if (client.closed) return clearInterval(timer);
    client.writeRaw(bytes.subarray(at % bytes.length, (at % bytes.length) + 1));
    at++;
  }, everyMs);
  return () => clearInterval(timer);
}

describe('MLLP under hostile peers', () => {
  it('lets a sender in while one peer holds every slot with trickling connections', async () => {
    const t = await engine({ maxConnections: 4, maxConnectionsPerPeer: 4, idleTimeoutMs: 60_000, frameTimeoutMs: 60_000 });
    const slow: MllpTestClient[] = [];
    const stops: Array<() => void> = [];
    for (let i = 0; i < 4; i++) {
      const client = await connect(t, '127.0.0.2');
      client.writeRaw(Buffer.from([VT]));
      stops.push(trickle(client, Buffer.from('MSH|^~\\&|SLOW|SLOW|'), 50));
      slow.push(client);
    }
    // Every slot is taken, and none of them is ever silent for long.
    await new Promise((r) => setTimeout(r, 300));
    // The same peer gets no fifth connection.
    const fifth = await connect(t, '127.0.0.2');
    expect(await closedWithin(fifth, 5_000)).toBe(true);
    // Another peer does, at the cost of one of the slow peer's connections, and its message is answered.
    for (const from of ['127.0.0.1', '127.0.0.3']) {
      const sender = await connect(t, from);
      const ack = await sender.request(adtMessage({ controlId: `IN-${from}`, mrn: 'H1' }));
      expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
      expect(hl7Field(ack, 'MSA', 2)).toBe(`IN-${from}`);
    }
    expect(await eventually(async () => slow.filter((c) => c.closed).length >= 2 || undefined, 5_000, 'two slow connections evicted')).toBe(true);
    // The slow peer cannot take the slots back from senders holding fewer connections than it does.
    const again = await connect(t, '127.0.0.2');
    expect(await closedWithin(again, 5_000)).toBe(true);
    for (const stop of stops) stop();
  });

  it('cuts a frame that never ends at frameTimeoutMs, with a coded NAK naming its control id', async () => {
    const t = await engine({ frameTimeoutMs: 1_500, idleTimeoutMs: 60_000 });
    const client = await connect(t);
    const header = adtMessage({ controlId: 'ENDLESS-1', mrn: 'E1' });
    client.writeRaw(Buffer.concat([Buffer.from([VT]), Buffer.from(header)]));
    const started = Date.now();
    const stop = trickle(client, Buffer.from('OBX|1|TX|||endless text\r'), 20);
    try {
      const nak = (await client.nextAck(20_000)).toString('latin1');
      const elapsed = Date.now() - started;
      expect(hl7Field(nak, 'MSA', 1)).toBe('AE');
      expect(hl7Field(nak, 'MSA', 2)).toBe('ENDLESS-1');
      expect(nak).toContain('ANCHORLINE_ERR_FRAME_TIMEOUT');
      expect(elapsed).toBeGreaterThanOrEqual(1_000);
      expect(await closedWithin(client, 10_000)).toBe(true);
    } finally {
      stop();
    }
    // Bytes between frames trickled forever are cut too, without an answer.
    const junk = await connect(t);
    const stopJunk = trickle(junk, Buffer.from('not a frame '), 20);
    try {
      expect(await closedWithin(junk, 20_000)).toBe(true);
      expect(junk.pendingAcks).toBe(0);
    } finally {
      stopJunk();
    }
  });

  const strays: Array<{ name: string; before: (controlId: string) => Buffer }> = [
    { name: 'a lone 0x1C', before: () => Buffer.from([FS]) },
    { name: 'a stray 0x1C 0x0D', before: () => Buffer.from([FS, CR]) },
    { name: 'a 0x0B inside a frame', before: () => Buffer.concat([Buffer.from([VT]), Buffer.from('MSH|^~\\&|EMR|SNUH|ANCHORLINE|HUB|20261121093000||ADT^A01|HALF-1|P|2.5.1\rPID|1|')]) },
    { name: 'junk and abandoned frame starts', before: () => Buffer.from([0x41, 0x42, VT, VT, 0x58, CR, 0x0a]) },
  ];

  it.each(strays)('answers a real message after $name with exactly one ACK, naming its control id', async ({ name, before }) => {
    const t = engines.find((e) => e.config.mllp.frameTimeoutMs === 60_000 && e.config.mllp.maxConnections === 256) ?? (await engine({}));
    const client = await connect(t);
    const controlId = `STRAY-${name.replace(/[^A-Za-z0-9]/g, '')}`.slice(0, 20);
    client.writeRaw(Buffer.concat([before(controlId), encodeMllpFrame(Buffer.from(adtMessage({ controlId, mrn: 'S1' })))]));
    const ack = (await client.nextAck()).toString('latin1');
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    expect(hl7Field(ack, 'MSA', 2)).toBe(controlId);
    // The next message on the same connection is paired with its own answer: nothing extra is in between.
    const next = await client.request(adtMessage({ controlId: `${controlId}-2`.slice(0, 22), mrn: 'S1' }));
    expect(hl7Field(next, 'MSA', 2)).toBe(`${controlId}-2`.slice(0, 22));
    await expect(client.nextAck(500)).rejects.toThrow();
  });

  it('answers a frame broken by a lone 0x1C once, with its control id, and the message after it in step', async () => {
    const t = engines[engines.length - 1]!;
    const client = await connect(t);
    const message = adtMessage({ controlId: 'SPLIT-1', mrn: 'S2' });
    const cut = message.indexOf('PID|');
    client.writeRaw(Buffer.concat([Buffer.from([VT]), Buffer.from(message.slice(0, cut)), Buffer.from([FS]), Buffer.from(message.slice(cut)), Buffer.from([FS, CR])]));
    const nak = (await client.nextAck()).toString('latin1');
    expect(hl7Field(nak, 'MSA', 2)).toBe('SPLIT-1');
    expect(['AR', 'AE']).toContain(hl7Field(nak, 'MSA', 1));
    const next = await client.request(adtMessage({ controlId: 'SPLIT-2', mrn: 'S2' }));
    expect(hl7Field(next, 'MSA', 2)).toBe('SPLIT-2');
    await expect(client.nextAck(500)).rejects.toThrow();
  });

  it('refuses an over-cap frame by streaming it, and records its whole size', async () => {
    const t = await engine({ maxFrameBytes: 4_096 });
    const client = await connect(t);
    const body = adtMessage({ controlId: 'BIG-1', mrn: 'B1' }) + `OBX|1|TX|||${'x'.repeat(3 * 1024 * 1024)}\r`;
    const nak = await client.request(body);
    expect(hl7Field(nak, 'MSA', 1)).toBe('AR');
    expect(hl7Field(nak, 'MSA', 2)).toBe('BIG-1');
    expect(nak).toContain('ANCHORLINE_ERR_FRAME_TOO_LARGE');
    const row = (await t.pool.query(`SELECT id, raw_size, raw_truncated FROM inbox_message WHERE control_id = 'BIG-1'`)).rows[0];
    // The kept bytes as the store's reader opens them (sealed, the column holds them with a nonce and a tag).
    const kept = (await inbox.getMessage(t.pool, Number(row.id)))!.raw.length;
    expect({ ...row, kept }).toMatchObject({ raw_size: Buffer.byteLength(body), kept: 4_096, raw_truncated: true });
  });

  it("fails only the message whose row the store refuses, not the others committed with it", async () => {
    const t = await engine({});
    // A constraint standing for any value the store cannot hold (before bigint, a refused frame over 2 GiB).
    await t.pool.query(`ALTER TABLE inbox_message ADD CONSTRAINT test_refused_row CHECK (control_id IS DISTINCT FROM 'POISON')`);
    const senders = await Promise.all(Array.from({ length: 8 }, () => connect(t)));
    const acks = await Promise.all(senders.map((client, i) => client.request(adtMessage({ controlId: i === 3 ? 'POISON' : `GROUP-${i}`, mrn: `G${i}` }))));
    acks.forEach((ack, i) => {
      if (i === 3) {
        expect(hl7Field(ack, 'MSA', 1)).toBe('AE');
        expect(ack).toContain('ANCHORLINE_ERR_STORE_REFUSED_MESSAGE');
      } else {
        expect(hl7Field(ack, 'MSA', 1), `sender ${i}`).toBe('AA');
      }
    });
    const stored = await t.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id LIKE 'GROUP-%'`);
    expect(stored.rows[0].n).toBe(7);
  });
});
