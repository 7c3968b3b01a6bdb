/**
 * The bootstrap admin key across restarts: made at the first start of a fresh installation, and once revoked, revoked
 * for good: neither a restart nor a missing key file brings one back by itself.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/logger.ts';
import { startEngine, type Engine } from '../../cli/engine.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

const CONFIGURED_KEY = 'configured-bootstrap-key-0123456789';

let t: TestEngine;
let restarted: Engine | undefined;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { auth: { apiKey: undefined, credentialCacheMs: 0 } } });
});
afterAll(async () => {
  await restarted?.close();
  await t?.destroy();
});

async function restart(overrides: { apiKey?: string } = {}): Promise<string> {
  if (restarted) await restarted.close();
  else await t.close();
  restarted = await startEngine({ ...t.config, auth: { ...t.config.auth, apiKey: overrides.apiKey } }, silentLogger());
  return `http://127.0.0.1:${restarted.httpPort}`;
}

async function status(url: string, key: string): Promise<number> {
  return (await fetch(`${url}/fhir/Patient`, { headers: { authorization: `Bearer ${key}` } })).status;
}

async function activeKeys(): Promise<number> {
  return (await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM api_key WHERE revoked_at IS NULL')).rows[0]!.n;
}

async function revokeBootstrap(url: string, key: string): Promise<void> {
  const listed = (await (await fetch(`${url}/admin/api-keys`, { headers: { authorization: `Bearer ${key}` } })).json()) as { keys: Array<{ id: number; name: string }> };
  const bootstrap = listed.keys.find((k) => k.name === 'bootstrap')!;
  expect((await fetch(`${url}/admin/api-keys/${bootstrap.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } })).status).toBe(204);
  expect(await status(url, key)).toBe(401);
}

describe('bootstrap API key', () => {
  it('is made at the first start of a fresh installation and stays revoked across restarts', async () => {
    const file = path.join(t.config.dataDir, 'api-key');
    expect(t.engine.apiKeyFile).toBe(path.resolve(file));
    const key = (await readFile(file, 'utf8')).trim();
    expect(await status(t.httpUrl, key)).toBe(200);
    await revokeBootstrap(t.httpUrl, key);

    // Restarted on the same data dir and database: the file's key is revoked and stays so.
    let url = await restart();
    expect(await status(url, key)).toBe(401);
    expect((await readFile(file, 'utf8')).trim()).toBe(key);
    expect(await activeKeys()).toBe(0);

    // Without the key file, the database is not a fresh one: no key is made behind the operator's back.
    await rm(file);
    url = await restart();
    expect(existsSync(file)).toBe(false);
    expect(restarted!.apiKeyFile).toBeUndefined();
    expect(await activeKeys()).toBe(0);
    expect(await status(url, key)).toBe(401);
  });

  it('a configured key (ANCHORLINE_API_KEY) once revoked stays revoked at restart', async () => {
    let url = await restart({ apiKey: CONFIGURED_KEY });
    expect(await status(url, CONFIGURED_KEY)).toBe(200);
    await revokeBootstrap(url, CONFIGURED_KEY);
    url = await restart({ apiKey: CONFIGURED_KEY });
    expect(await status(url, CONFIGURED_KEY)).toBe(401);
    expect(await activeKeys()).toBe(0);
  });
});
