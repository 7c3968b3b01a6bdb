/**
 * A hospital's identity provider, as tests need one: an ES256 key pair, its JWK Set served over HTTP (what the engine's
 * `auth.externalIdp.jwksUri` fetches), and access tokens signed with it for the accounts tests create. The provider
 * is outside the engine, so this stand-in is the real thing as far as the engine can tell.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export interface TestIdp {
  issuer: string;
  audience: string;
  jwksUri: string;
  /** The engine config that trusts this provider: `{ auth: { externalIdp } }`'s value. */
  externalIdp: { issuer: string; jwksUri: string; audience: string };
  /** An access token for the account whose externalSubject is `subject`, with `scope`, valid 10 minutes. */
  token(subject: string, scope: string, app?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIdp(issuer = 'https://idp.hospital.test', audience = 'anchorline-test'): Promise<TestIdp> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const signingKey: CryptoKey = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  const server = http.createServer((_request, response) => response.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [publicJwk] })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return {
    issuer,
    audience,
    jwksUri,
    externalIdp: { issuer, jwksUri, audience },
    token: (subject, scope, app = 'ward-app') =>
      new SignJWT({ scope, azp: app }).setProtectedHeader({ alg: 'ES256', kid: 'idp-1' }).setIssuer(issuer).setAudience(audience).setSubject(subject).setIssuedAt().setExpirationTime('10m').sign(signingKey),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
