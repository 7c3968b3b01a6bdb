/** MLLP caps and transport: connection limit, idle timeout, TLS. */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMllpFrame, MllpFramer } from '../../adapters/mllp/framer.ts';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const engines: TestEngine[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const e of engines) await e.destroy();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function closedWithin(client: MllpTestClient, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (client.closed) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return client.closed;
}

describe('MLLP limits', () => {
  it('closes connections beyond maxConnections and idle ones after idleTimeoutMs', async () => {
    // The idle timeout leaves room for a loaded machine: the third connection must arrive while both are open.
    const t = await startTestEngine({ overrides: { mllp: { maxConnections: 2, idleTimeoutMs: 1_500 } } });
    engines.push(t);
    const a = await MllpTestClient.connect(t.mllpPort);
    const b = await MllpTestClient.connect(t.mllpPort);
    const c = await MllpTestClient.connect(t.mllpPort);
    expect(await closedWithin(c, 5_000)).toBe(true);
    expect(hl7Field(await a.request(adtMessage({ controlId: 'L-1', mrn: 'L1' })), 'MSA', 1)).toBe('AA');
    // The two admitted connections are idle now: both are closed by the server.
    expect(await closedWithin(a, 8_000)).toBe(true);
    expect(await closedWithin(b, 8_000)).toBe(true);
    // Their slots are free again, once the server has seen its side of those sockets close (which can lag behind
    // the client seeing them closed by a few milliseconds on a loaded machine).
    const ack = await eventually(async () => {
      const d = await MllpTestClient.connect(t.mllpPort);
      try {
        return await d.request(adtMessage({ controlId: 'L-2', mrn: 'L2' }));
      } catch {
        return undefined;
      } finally {
        await d.close();
      }
    }, 5_000, 'a connection admitted again');
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
  });

  it('serves MLLP over TLS', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-tls-'));
    dirs.push(dir);
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    const t = await startTestEngine({ overrides: { mllp: { tls: { enabled: true, certFile, keyFile } } } });
    engines.push(t);
    const socket = tls.connect({ host: '127.0.0.1', port: t.mllpPort, ca: await readFile(certFile) });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const framer = new MllpFramer({ maxFrameBytes: 1 << 20 });
    const ack = await new Promise<string>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        for (const e of framer.push(chunk)) if (e.kind === 'frame') resolve(e.payload.toString());
      });
      socket.write(encodeMllpFrame(Buffer.from(adtMessage({ controlId: 'TLS-1', mrn: 'T1' }))));
    });
    socket.end();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    expect(hl7Field(ack, 'MSA', 2)).toBe('TLS-1');

    // A plain-TCP sender gets no ACK from the TLS listener.
    const plain = await MllpTestClient.connect(t.mllpPort);
    plain.send(adtMessage({ controlId: 'PLAIN-1', mrn: 'T2' }));
    await expect(plain.nextAck(1_500)).rejects.toThrow();
    await plain.close();
  });
});
