/** `anchorline credentials` against a running engine's database: what it makes works over HTTP at once. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair } from 'jose';
import { runCredentials, type CredentialsOutput } from '../../cli/credentials.ts';
import { adtMessage } from '../support/messages.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let dir: string;
let configFile: string;

function captured(): CredentialsOutput & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (text) => (out += text), err: (text) => (err += text), stdout: () => out, stderr: () => err };
}

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = captured();
  const code = await runCredentials([...argv, '--config', configFile], output, {});
  return { code, stdout: output.stdout(), stderr: output.stderr() };
}

beforeAll(async () => {
  t = await startTestEngine({ overrides: { sources: [{ name: 'hospital-a', sendingFacilities: ['HOSPA'] }], auth: { credentialCacheMs: 0 } } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-credentials-'));
  configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(t.config));
});

afterAll(async () => {
  await t?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('anchorline credentials', () => {
  it('makes a key bound to a source, lists it, and revokes it', async () => {
    const created = await run('key', 'create', '--name', 'hospital A feed', '--scope', 'ingest', '--source', 'hospital-a');
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^al_/);
    const post = (controlId: string, facility: string) =>
      fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/hl7-v2' }, body: adtMessage({ controlId, mrn: controlId, facility }) });
    expect((await post('CLI-1', 'HOSPA')).status).toBe(202);

    const listed = await run('key', 'list');
    const row = listed.stdout.split('\n').find((line) => line.includes('hospital A feed'))!;
    expect(row.split('\t').slice(1, 4)).toEqual(['hospital A feed', 'ingest', 'hospital-a']);
    expect(listed.stdout).not.toContain(key);

    expect((await run('key', 'revoke', row.split('\t')[0]!)).code).toBe(0);
    expect((await post('CLI-2', 'HOSPA')).status).toBe(401);
    expect((await run('key', 'revoke', row.split('\t')[0]!)).code).toBe(1);
  });

  it('reads a key id only as decimal digits: 6e0, 0x7, +7, 07 or " 7" revoke nothing', async () => {
    const created = await run('key', 'create', '--name', 'strict ids', '--scope', 'system/Patient.rs');
    const key = created.stdout.trim();
    const id = Number((await run('key', 'list')).stdout.split('\n').find((line) => line.includes('strict ids'))!.split('\t')[0]);
    const read = async (): Promise<number> => (await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: `Bearer ${key}` } })).status;
    for (const spelling of [`${id}e0`, `0x${id.toString(16)}`, `+${id}`, `0${id}`, ` ${id}`, `${id}.0`, `${id} `]) {
      const refused = await run('key', 'revoke', spelling);
      expect(refused.code, spelling).toBe(2);
      expect(refused.stderr, spelling).toContain('decimal digits');
    }
    expect(await read()).toBe(200);
    expect((await run('key', 'revoke', String(id))).code).toBe(0);
    expect(await read()).toBe(401);
  });

  it('registers OAuth clients with a secret or a JWK Set', async () => {
    const created = await run('client', 'create', '--name', 'reader', '--scope', 'system/Patient.rs', '--scope', 'system/Encounter.rs');
    expect(created.code).toBe(0);
    const fields = Object.fromEntries(created.stdout.trim().split('\n').map((line) => line.split('=') as [string, string]));
    const token = await fetch(`${t.httpUrl}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${fields.client_id}:${fields.client_secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    expect(token.status).toBe(200);
    expect(((await token.json()) as { scope: string }).scope).toBe('system/Patient.rs system/Encounter.rs');

    const { publicKey } = await generateKeyPair('ES384', { extractable: true });
    const jwksFile = path.join(dir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify({ keys: [await exportJWK(publicKey)] }));
    const asymmetric = await run('client', 'create', '--name', 'service', '--scope', 'system/*.rs', '--jwks', jwksFile);
    expect(asymmetric.code).toBe(0);
    expect(asymmetric.stdout).not.toContain('client_secret');
    expect((await run('client', 'list')).stdout).toMatch(/\tservice\tsystem\/\*\.rs\t-\tprivate_key_jwt\t/);
    expect((await run('client', 'revoke', fields.client_id!)).code).toBe(0);
  });

  it('refuses unknown scopes, unknown sources and unknown commands with exit code 2', async () => {
    expect((await run('key', 'create', '--name', 'x', '--scope', 'system/Patient.everything')).code).toBe(2);
    const source = await run('key', 'create', '--name', 'x', '--scope', 'ingest', '--source', 'hospital-z');
    expect(source.code).toBe(2);
    expect(source.stderr).toContain('not a configured source (hospital-a)');
    expect((await run('key', 'create', '--scope', 'ingest')).stderr).toContain('--name is required');
    expect((await run('key', 'rotate')).code).toBe(2);
  });
});
