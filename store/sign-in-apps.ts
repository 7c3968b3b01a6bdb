/**
 * SMART apps people sign in through: OAuth clients of the authorization-code grant (see migration 0018), served to
 * the OpenID Connect provider by its Client model (api/sign-in.ts).
 *
 * A public app (a browser or mobile app that cannot keep a secret) has none and must use PKCE. A confidential app's
 * secret is not stored: it is an HMAC of the app's client_id and a random salt under the engine's sign-in secret
 * (a file under the data dir, `signInSecret`), so that a copy of the database alone does not let anyone act as the
 * app, while the provider, which compares secrets itself, can still be handed the secret. A new salt is a new secret.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AnchorlineError } from '../errors/index.ts';
import type { Queryable } from './db.ts';

export interface SignInApp {
  clientId: string;
  name: string;
  redirectUris: string[];
  /** True: authenticates with a client secret (client_secret_basic); false: a public app (PKCE only). */
  confidential: boolean;
  /** Registered by the engine itself (the patient portal); its redirect URI follows auth.publicUrl. */
  builtIn: boolean;
  disabled: boolean;
  createdAt: Date;
}

interface Row {
  client_id: string;
  name: string;
  redirect_uris: string[];
  confidential: boolean;
  secret_salt: Buffer | null;
  built_in: boolean;
  disabled: boolean;
  created_at: Date;
}

const COLUMNS = 'client_id, name, redirect_uris, confidential, secret_salt, built_in, disabled, created_at';

function toApp(row: Row): SignInApp {
  return { clientId: row.client_id, name: row.name, redirectUris: row.redirect_uris, confidential: row.confidential, builtIn: row.built_in, disabled: row.disabled, createdAt: row.created_at };
}

/**
 * The engine's sign-in secret (32 random bytes): cookie signing keys and app secrets are derived from it. Created at
 * first start with mode 0600; an engine started at the same moment reads the one that won.
 */
export async function loadSignInSecret(file: string): Promise<Buffer> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const secret = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
  if (secret.length < 32) throw new Error(`the sign-in secret ${file} holds fewer than 32 bytes`);
  return secret;
}

/** A confidential app's client secret, derived from the sign-in secret, its client_id and its salt. */
export function appSecret(signInSecret: Buffer, clientId: string, salt: Buffer): string {
  return `as_${createHmac('sha256', signInSecret).update('anchorline app secret\0').update(clientId).update('\0').update(salt).digest('base64url')}`;
}

/** A redirect URI an app may be sent back to: absolute http(s), no fragment (RFC 6749 section 3.1.2). */
export function checkRedirectUris(uris: unknown): string[] {
  if (!Array.isArray(uris) || uris.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'redirectUris must be a non-empty array of URLs', { location: 'redirectUris' });
  for (const uri of uris) {
    const url = typeof uri === 'string' ? URL.parse(uri) : null;
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash !== '' || uri.includes('#')) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `redirect URI ${JSON.stringify(uri)} is not an absolute http(s) URL without a fragment`, { location: 'redirectUris' });
    }
  }
  return [...new Set(uris as string[])];
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '' || name.length > 200) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'name must be 1-200 characters', { location: 'name' });
  return name;
}

/** Registers an app; a confidential one's secret is returned (derived, see appSecret) and shown only then. */
export async function createApp(db: Queryable, signInSecret: Buffer, app: { name: string; redirectUris: string[]; confidential: boolean }): Promise<{ app: SignInApp; secret?: string }> {
  const clientId = `app_${randomBytes(12).toString('base64url')}`;
  const salt = app.confidential ? randomBytes(16) : null;
  const result = await db.query<Row>(
    `INSERT INTO sign_in_app (client_id, name, redirect_uris, confidential, secret_salt) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
    [clientId, checkName(app.name), checkRedirectUris(app.redirectUris), app.confidential, salt],
  );
  return { app: toApp(result.rows[0]!), ...(salt ? { secret: appSecret(signInSecret, clientId, salt) } : {}) };
}

/** The app with this client_id, disabled or not, with the salt of its secret. */
export async function findApp(db: Queryable, clientId: string): Promise<(SignInApp & { secretSalt: Buffer | null }) | undefined> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM sign_in_app WHERE client_id = $1`, [clientId]);
  const row = result.rows[0];
  return row ? { ...toApp(row), secretSalt: row.secret_salt } : undefined;
}

export async function listApps(db: Queryable): Promise<SignInApp[]> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM sign_in_app ORDER BY created_at, client_id`);
  return result.rows.map(toApp);
}

/** Changes an app's name, redirect URIs or disabled flag; undefined when there is no such app. */
export async function updateApp(db: Queryable, clientId: string, changes: { name?: string; redirectUris?: string[]; disabled?: boolean }): Promise<SignInApp | undefined> {
  const result = await db.query<Row>(
    `UPDATE sign_in_app SET name = COALESCE($2, name), redirect_uris = COALESCE($3, redirect_uris), disabled = COALESCE($4, disabled), updated_at = now()
     WHERE client_id = $1 RETURNING ${COLUMNS}`,
    [clientId, changes.name === undefined ? null : checkName(changes.name), changes.redirectUris === undefined ? null : checkRedirectUris(changes.redirectUris), changes.disabled ?? null],
  );
  return result.rows[0] ? toApp(result.rows[0]) : undefined;
}

/**
 * Registers a public app the engine ships with, or points its redirect URIs at the current public URL. An
 * administrator who disabled it keeps it disabled.
 */
export async function ensureBuiltInApp(db: Queryable, app: { clientId: string; name: string; redirectUris: string[] }): Promise<void> {
  await db.query(
    `INSERT INTO sign_in_app (client_id, name, redirect_uris, confidential, built_in) VALUES ($1, $2, $3, false, true)
     ON CONFLICT (client_id) DO UPDATE SET redirect_uris = excluded.redirect_uris, updated_at = now()
       WHERE sign_in_app.redirect_uris IS DISTINCT FROM excluded.redirect_uris`,
    [app.clientId, app.name, checkRedirectUris(app.redirectUris)],
  );
}
