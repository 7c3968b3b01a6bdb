/** `anchorline user` and `anchorline app` against a running engine's database: what they make is live over HTTP at once. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUsers, type UsersOutput } from '../../cli/users.ts';
import { authHeaders, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let dir: string;
let configFile: string;

async function run(noun: 'user' | 'app', argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const output: UsersOutput = { out: (text) => (stdout += text), err: (text) => (stderr += text), readPassword: async () => 'typed on standard input' };
  const code = await runUsers(noun, [...argv, '--config', configFile], output, env);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  t = await startTestEngine();
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-users-'));
  configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(t.config));
});

afterAll(async () => {
  await t?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('anchorline user and app', () => {
  it('adds, lists and disables an account, with the password kept off the command line', async () => {
    const added = await run('user', ['add', '--username', 'rep.lee', '--role', 'representative', '--fhir-user', 'RelatedPerson/rp-1', '--name', 'Lee Representative', '--patient', 'Patient/p-1', '--patient', 'Patient/p-2']);
    expect(added.code, added.stderr).toBe(0);
    const id = added.stdout.trim();
    const listed = await run('user', ['list']);
    expect(listed.stdout).toContain(`${id}\trep.lee\trepresentative\tRelatedPerson/rp-1\tPatient/p-1,Patient/p-2\tactive`);
    expect(listed.stdout).not.toContain('scrypt');
    expect((await run('user', ['disable', id])).code).toBe(0);
    const viaApi = (await (await fetch(`${t.httpUrl}/admin/users`, { headers: authHeaders() })).json()) as { users: Array<{ id: string; disabled: boolean; hasPassword: boolean }> };
    expect(viaApi.users.find((u) => u.id === id)).toMatchObject({ disabled: true, hasPassword: true });
    // A practitioner has no linked patients; the refusal names the rule.
    const wrong = await run('user', ['add', '--username', 'dr.x', '--role', 'practitioner', '--fhir-user', 'Practitioner/x', '--name', 'Dr X', '--patient', 'Patient/p-1'], { ANCHORLINE_USER_PASSWORD: 'long enough password' });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('choosing one when an app launches');
    expect((await run('user', ['disable', '999999'])).code).toBe(1);
  });

  it('registers a confidential app whose secret is printed once and not stored', async () => {
    const added = await run('app', ['add', '--name', 'Clinic dashboard', '--redirect-uri', 'https://clinic.example/callback', '--confidential']);
    expect(added.code, added.stderr).toBe(0);
    const clientId = /client_id=(\S+)/.exec(added.stdout)![1]!;
    const secret = /client_secret=(\S+)/.exec(added.stdout)![1]!;
    const stored = await t.pool.query('SELECT * FROM sign_in_app WHERE client_id = $1', [clientId]);
    expect(JSON.stringify(stored.rows[0])).not.toContain(secret);
    expect((await run('app', ['list'])).stdout).toContain(`${clientId}\tClinic dashboard\tconfidential\thttps://clinic.example/callback\tactive`);
    const bad = await run('app', ['add', '--name', 'Bad', '--redirect-uri', 'https://x.example/cb#fragment']);
    expect(bad.code).toBe(2);
  });
});
