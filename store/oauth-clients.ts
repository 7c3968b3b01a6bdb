/**
 * OAuth 2.0 clients of the client-credentials grant, and the client-assertion ids already used (see migration 0010).
 *
 * A client has a secret, a JWK Set, or both. A secret is generated here and shown once; only its SHA-256 is kept.
 * Revoking a client stops new tokens at once; tokens already issued stay valid until they expire (their lifetime is
 * short, auth.tokenLifetimeSeconds) unless the API also checks the client per request, which it does: see
 * api/server.ts.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from './db.ts';

export interface OAuthClient {
  clientId: string;
  name: string;
  scopes: string[];
  source: string | null;
  /** The client's public keys for private_key_jwt; null when it authenticates with a secret only. */
  jwks: { keys: Array<Record<string, unknown>> } | null;
  hasSecret: boolean;
  createdAt: Date;
}

export interface NewOAuthClient {
  name: string;
  scopes: string[];
  source?: string | null;
  jwks?: { keys: Array<Record<string, unknown>> } | null;
  /** Generate a client secret (returned once). Default: true when no JWK Set is given. */
  withSecret?: boolean;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

interface Row {
  client_id: string;
  name: string;
  scopes: string[];
  source: string | null;
  jwks: OAuthClient['jwks'];
  secret_sha256: Buffer | null;
  created_at: Date;
}

function toClient(row: Row): OAuthClient {
  return { clientId: row.client_id, name: row.name, scopes: row.scopes, source: row.source, jwks: row.jwks, hasSecret: row.secret_sha256 !== null, createdAt: row.created_at };
}

export async function createClient(db: Queryable, client: NewOAuthClient): Promise<{ client: OAuthClient; secret?: string }> {
  const clientId = `cl_${randomBytes(12).toString('base64url')}`;
  const withSecret = client.withSecret ?? !client.jwks;
  const secret = withSecret ? `cs_${randomBytes(32).toString('base64url')}` : undefined;
  const result = await db.query<Row>(
    `INSERT INTO oauth_client (client_id, name, secret_sha256, jwks, scopes, source) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING client_id, name, scopes, source, jwks, secret_sha256, created_at`,
    [clientId, client.name, secret ? sha256(secret) : null, client.jwks ?? null, client.scopes, client.source ?? null],
  );
  return { client: toClient(result.rows[0]!), ...(secret ? { secret } : {}) };
}

/** The active client with this id, with the stored secret hash for checking. */
export async function findClient(db: Queryable, clientId: string): Promise<(OAuthClient & { secretSha256: Buffer | null }) | undefined> {
  const result = await db.query<Row>(
    'SELECT client_id, name, scopes, source, jwks, secret_sha256, created_at FROM oauth_client WHERE client_id = $1 AND revoked_at IS NULL',
    [clientId],
  );
  const row = result.rows[0];
  return row ? { ...toClient(row), secretSha256: row.secret_sha256 } : undefined;
}

/** Constant-time comparison of a presented secret with the stored hash. */
export function secretMatches(stored: Buffer | null, presented: string): boolean {
  if (!stored) return false;
  const hash = sha256(presented);
  return hash.length === stored.length && timingSafeEqual(hash, stored);
}

export async function listClients(db: Queryable): Promise<OAuthClient[]> {
  const result = await db.query<Row>('SELECT client_id, name, scopes, source, jwks, secret_sha256, created_at FROM oauth_client WHERE revoked_at IS NULL ORDER BY id DESC');
  return result.rows.map(toClient);
}

export async function revokeClient(db: Queryable, clientId: string): Promise<boolean> {
  const result = await db.query('UPDATE oauth_client SET revoked_at = now() WHERE client_id = $1 AND revoked_at IS NULL', [clientId]);
  return (result.rowCount ?? 0) > 0;
}

/**
 * Records a client assertion's jti; false when it was used before (a replay). Expired entries are dropped on the
 * way, so the table holds only assertions that could still be presented.
 */
export async function useAssertion(db: Queryable, clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
  await db.query('DELETE FROM oauth_assertion WHERE expires_at < now()');
  const result = await db.query(
    'INSERT INTO oauth_assertion (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [clientId, jti, expiresAt],
  );
  return (result.rowCount ?? 0) > 0;
}
