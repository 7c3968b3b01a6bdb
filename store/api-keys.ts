/**
 * Bearer API keys. A key is shown once when it is made; only its SHA-256 is stored. Scopes are kept as given (the
 * API checks them against the scope grammar in api/access.ts); `source` binds a key to one configured source.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Queryable } from './db.ts';

export interface ApiKeyInfo {
  id: number;
  name: string;
  scopes: string[];
  /** The configured source the key is bound to; null when it is not bound to one. */
  source: string | null;
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export function generateApiKey(): string {
  return `al_${randomBytes(32).toString('base64url')}`;
}

export async function createApiKey(db: Queryable, name: string, scopes: string[], key: string = generateApiKey(), source: string | null = null): Promise<{ key: string; info: ApiKeyInfo }> {
  const result = await db.query<{ id: string }>(
    `INSERT INTO api_key (name, key_sha256, scopes, source) VALUES ($1, $2, $3, $4)
     ON CONFLICT (key_sha256) DO UPDATE SET revoked_at = NULL, scopes = EXCLUDED.scopes, source = EXCLUDED.source RETURNING id`,
    [name, hashApiKey(key), scopes, source],
  );
  return { key, info: { id: Number(result.rows[0]!.id), name, scopes, source } };
}

export async function findApiKey(db: Queryable, key: string): Promise<ApiKeyInfo | undefined> {
  const result = await db.query<{ id: string; name: string; scopes: string[]; source: string | null }>(
    'SELECT id, name, scopes, source FROM api_key WHERE key_sha256 = $1 AND revoked_at IS NULL',
    [hashApiKey(key)],
  );
  const row = result.rows[0];
  return row ? { ...row, id: Number(row.id) } : undefined;
}

/** Active keys, newest first; never the key itself. */
export async function listApiKeys(db: Queryable): Promise<Array<ApiKeyInfo & { createdAt: Date }>> {
  const result = await db.query<{ id: string; name: string; scopes: string[]; source: string | null; created_at: Date }>(
    'SELECT id, name, scopes, source, created_at FROM api_key WHERE revoked_at IS NULL ORDER BY id DESC',
  );
  return result.rows.map((row) => ({ id: Number(row.id), name: row.name, scopes: row.scopes, source: row.source, createdAt: row.created_at }));
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
    await createApiKey(db, 'bootstrap', ['admin'], configuredKey);
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
  await createApiKey(db, 'bootstrap', ['admin'], key);
  return { source: 'file', file };
}
