/** The engine's access tokens: one key file shared by engines, expiry, and nothing but its own tokens accepted. */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT } from 'jose';
import { TokenIssuer } from '../../api/oauth.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-tokens-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TokenIssuer', () => {
  it('creates its key once (mode 0600), and engines sharing the file accept each other\'s tokens', async () => {
    const file = path.join(dir, 'shared.pem');
    const first = await TokenIssuer.fromKeyFile(file, { issuer: 'anchorline', lifetimeSeconds: 60, create: true });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await TokenIssuer.fromKeyFile(file, { issuer: 'anchorline', lifetimeSeconds: 60, create: false });
    expect(second.publicJwk.kid).toBe(first.publicJwk.kid);
    const { token } = await first.issue({ clientId: 'cl_1', scopes: ['system/Patient.rs'], source: 'hospital-a' });
    expect(await second.verify(token)).toEqual({ clientId: 'cl_1', scopes: ['system/Patient.rs'], source: 'hospital-a' });
    await expect(TokenIssuer.fromKeyFile(path.join(dir, 'missing.pem'), { issuer: 'anchorline', lifetimeSeconds: 60, create: false })).rejects.toThrow(/does not exist/);
  });

  it('refuses expired tokens, tokens of another key or issuer, and JWTs that are not access tokens', async () => {
    const issuer = await TokenIssuer.fromKeyFile(path.join(dir, 'a.pem'), { issuer: 'anchorline', lifetimeSeconds: 1, create: true });
    const { token } = await issuer.issue({ clientId: 'cl_2', scopes: ['ingest'] });
    expect(await issuer.verify(token)).toBeDefined();
    const other = await TokenIssuer.fromKeyFile(path.join(dir, 'b.pem'), { issuer: 'anchorline', lifetimeSeconds: 60, create: true });
    expect(await other.verify(token)).toBeUndefined();
    const elsewhere = await TokenIssuer.fromKeyFile(path.join(dir, 'a.pem'), { issuer: 'https://other.example', lifetimeSeconds: 60, create: false });
    expect(await elsewhere.verify(token)).toBeUndefined();

    // Signed by a key of ours' kind but not typed as an access token, and an unsigned one.
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('anchorline').setAudience('anchorline').setSubject('x').setExpirationTime('1m').sign(privateKey);
    expect(await issuer.verify(foreign)).toBeUndefined();
    const unsigned = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from('{"iss":"anchorline","aud":"anchorline","sub":"x","scope":"admin"}').toString('base64url')}.`;
    expect(await issuer.verify(unsigned)).toBeUndefined();

    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect(await issuer.verify(token)).toBeUndefined();
  });
});
