/**
 * Bearer API keys. A key is shown once when it is made; only its SHA-256 is stored.
 * Scopes: `ingest` (post messages), `read` (FHIR reads and searches), `admin` (everything, including key management).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Queryable } from './db.ts';

export const SCOPES = ['ingest', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyInfo {
  id: number;
  name: string;
  scopes: Scope[];
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export function generateApiKey(): string {
  return `al_${randomBytes(32).toString('base64url')}`;
}

export async function createApiKey(db: Queryable, name: string, scopes: Scope[], key: string = generateApiKey()): Promise<{ key: string; info: ApiKeyInfo }> {
  const result = await db.query<{ id: number }>(
    `INSERT INTO api_key (name, key_sha256, scopes) VALUES ($1, $2, $3)
     ON CONFLICT (key_sha256) DO UPDATE SET revoked_at = NULL, scopes = EXCLUDED.scopes RETURNING id`,
    [name, hashApiKey(key), scopes],
  );
  return { key, info: { id: result.rows[0]!.id, name, scopes } };
}

export async function findApiKey(db: Queryable, key: string): Promise<ApiKeyInfo | undefined> {
  const result = await db.query<{ id: number; name: string; scopes: Scope[] }>(
    'SELECT id, name, scopes FROM api_key WHERE key_sha256 = $1 AND revoked_at IS NULL',
    [hashApiKey(key)],
  );
  return result.rows[0];
}

export async function revokeApiKey(db: Queryable, id: number): Promise<boolean> {
  const result = await db.query('UPDATE api_key SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
  return (result.rowCount ?? 0) > 0;
}

export const BOOTSTRAP_KEY_FILE = 'api-key';

/**
 * Makes sure the bootstrap admin key works: the configured one (ANCHORLINE_API_KEY), or else the one written under
 * the data directory at first start (created there, mode 0600, when missing). Returns where the key came from.
 */
export async function ensureBootstrapKey(db: Queryable, configuredKey: string | undefined, dataDir: string): Promise<{ source: 'config' | 'file'; file?: string }> {
  if (configuredKey) {
    await createApiKey(db, 'bootstrap', ['ingest', 'read', 'admin'], configuredKey);
    return { source: 'config' };
  }
  const file = path.join(path.resolve(dataDir), BOOTSTRAP_KEY_FILE);
  let key: string;
  if (existsSync(file)) {
    key = (await readFile(file, 'utf8')).trim();
  } else {
    key = generateApiKey();
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, key + '\n', { mode: 0o600 });
  }
  await createApiKey(db, 'bootstrap', ['ingest', 'read', 'admin'], key);
  return { source: 'file', file };
}
