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

/** Where the bootstrap key came from, and whether it works. */
export interface BootstrapKey {
  source: 'config' | 'file' | 'none';
  /** The key file, when the key is (or was to be) kept under the data directory. */
  file?: string;
  /** True when the key was revoked: it stays so; a restart does not bring it back. */
  revoked?: boolean;
}

/**
 * The bootstrap admin key: the configured one (ANCHORLINE_API_KEY), or else the one written under the data directory.
 *
 * A key is registered when its hash is not stored yet. One that was revoked stays revoked, whatever the restart:
 * revoking it is how an operator retires it, and a key that came back by itself would undo that. A new key file is
 * made only when the data directory has none and the database holds no API key at all (the first start of a fresh
 * installation); otherwise an admin makes keys explicitly (`anchorline credentials key create --scope admin`).
 */
export async function ensureBootstrapKey(db: Queryable, configuredKey: string | undefined, dataDir: string): Promise<BootstrapKey> {
  if (configuredKey) return { source: 'config', ...(await registerBootstrapKey(db, configuredKey)) };
  const file = path.join(path.resolve(dataDir), BOOTSTRAP_KEY_FILE);
  if (existsSync(file)) {
    const key = (await readFile(file, 'utf8')).trim();
    return { source: 'file', file, ...(await registerBootstrapKey(db, key)) };
  }
  const anyKey = await db.query('SELECT 1 FROM api_key LIMIT 1');
  if ((anyKey.rowCount ?? 0) > 0) return { source: 'none', file };
  const key = generateApiKey();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, key + '\n', { mode: 0o600 });
  return { source: 'file', file, ...(await registerBootstrapKey(db, key)) };
}

async function registerBootstrapKey(db: Queryable, key: string): Promise<{ revoked: boolean }> {
  // Inserted when new; an existing row, active or revoked, is left as it is (never un-revoked).
  await db.query(`INSERT INTO api_key (name, key_sha256, scopes) VALUES ('bootstrap', $1, $2) ON CONFLICT (key_sha256) DO NOTHING`, [hashApiKey(key), ['admin']]);
  const row = await db.query<{ revoked: boolean }>('SELECT revoked_at IS NOT NULL AS revoked FROM api_key WHERE key_sha256 = $1', [hashApiKey(key)]);
  return { revoked: row.rows[0]?.revoked ?? false };
}
