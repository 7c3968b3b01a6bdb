/**
 * MLLP over TLS with client certificates pinned per source: a connection presenting a hospital's pinned certificate
 * may send that hospital's facilities; any other connection is refused them with AR, whatever its MSH says.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

let dir: string;
const engines: TestEngine[] = [];
const files: Record<string, { cert: Buffer; key: Buffer; fingerprint: string }> = {};

/** A self-signed P-256 certificate and its SHA-256 fingerprint as openssl prints it (colon-separated hex). */
function certificate(name: string): { certFile: string; keyFile: string; fingerprint: string } {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  const printed = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
  return { certFile, keyFile, fingerprint: printed.trim().split('=')[1]! };
}

let server: { certFile: string; keyFile: string };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-pinning-'));
  server = certificate('server');
  for (const name of ['hospital-a', 'stranger']) {
    const made = certificate(name);
    files[name] = { cert: await readFile(made.certFile), key: await readFile(made.keyFile), fingerprint: made.fingerprint };
  }
});

afterAll(async () => {
  for (const t of engines) await t.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function engine(requireClientCert: boolean): Promise<TestEngine> {
  const t = await startTestEngine({
    overrides: {
      mllp: { tls: { enabled: true, certFile: server.certFile, keyFile: server.keyFile, requireClientCert } },
      sources: [{ name: 'hospital-a', sendingFacilities: ['HOSPA'], mllp: { clientCertificateSha256: [files['hospital-a']!.fingerprint] } }],
    },
  });
  engines.push(t);
  return t;
}

async function connect(t: TestEngine, who?: 'hospital-a' | 'stranger'): Promise<MllpTestClient> {
  return MllpTestClient.connectTls(t.mllpPort, { ca: await readFile(server.certFile), ...(who ? { cert: files[who]!.cert, key: files[who]!.key } : {}) });
}

describe('MLLP client certificates pinned to sources', () => {
  it('binds a pinned certificate to its source and refuses that source\'s facilities to everyone else', async () => {
    const t = await engine(false);
    const pinned = await connect(t, 'hospital-a');
    const own = await pinned.request(adtMessage({ controlId: 'PIN-1', mrn: 'P1', facility: 'HOSPA' }));
    expect(hl7Field(own, 'MSA', 1)).toBe('AA');
    await pinned.close();

    for (const who of ['stranger', undefined] as const) {
      const other = await connect(t, who);
      const spoofed = await other.request(adtMessage({ controlId: `PIN-2-${who ?? 'none'}`, mrn: 'P2', facility: 'HOSPA' }));
      expect(hl7Field(spoofed, 'MSA', 1)).toBe('AR');
      expect(spoofed).toContain('ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED');
      // What no source claims stays open to every sender.
      expect(hl7Field(await other.request(adtMessage({ controlId: `PIN-3-${who ?? 'none'}`, mrn: 'P3', facility: 'OPEN' })), 'MSA', 1)).toBe('AA');
      await other.close();
    }
    const stored = await t.pool.query<{ source: string; state: string; error_code: string | null }>(`SELECT source, state, error_code FROM inbox_message WHERE control_id LIKE 'PIN-%' ORDER BY id`);
    expect(stored.rows[0]).toMatchObject({ state: expect.any(String), source: expect.stringMatching(/ source=hospital-a$/) });
    expect(stored.rows.filter((r) => r.error_code === 'ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED').map((r) => r.state)).toEqual(['rejected', 'rejected']);
  });

  it('with requireClientCert, admits a pinned self-signed certificate and closes connections without one', async () => {
    const t = await engine(true);
    const pinned = await connect(t, 'hospital-a');
    expect(hl7Field(await pinned.request(adtMessage({ controlId: 'REQ-1', mrn: 'R1', facility: 'HOSPA' })), 'MSA', 1)).toBe('AA');
    await pinned.close();
    // Neither CA-verified (no CA bundle is configured) nor pinned: the listener closes the connection unanswered.
    const stranger = await connect(t, 'stranger').catch(() => undefined);
    if (stranger) {
      stranger.send(adtMessage({ controlId: 'REQ-2', mrn: 'R2', facility: 'OPEN' }));
      await expect(stranger.nextAck(5_000)).rejects.toThrow(/closed/);
    }
    expect((await t.pool.query(`SELECT 1 FROM inbox_message WHERE control_id = 'REQ-2'`)).rowCount).toBe(0);
  });
});
