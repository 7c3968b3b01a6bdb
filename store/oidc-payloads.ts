/**
 * What the OpenID Connect provider (api/sign-in.ts) keeps between requests, by model name and id (see migration
 * 0018): sessions, interactions, authorization codes, refresh tokens, grants, replay detection, and the SMART launch
 * context of a grant. The provider's adapter interface maps onto these functions one to one.
 *
 * Contract: `upsert` replaces the payload of (model, id) and restarts its expiry; a row past its expiry is never
 * returned and counts as absent; `consume` marks a row used (an authorization code, a rotated refresh token) and
 * `find` then returns it with `consumed` set, which the provider treats as a replay. `revokeByGrant` deletes every
 * row of a grant, whatever its model, so that revoking a grant ends its tokens and launch context at once.
 */
import type { Queryable } from './db.ts';

export type Payload = Record<string, unknown>;

export async function upsert(db: Queryable, model: string, id: string, payload: Payload, expiresInSeconds: number | undefined): Promise<void> {
  await db.query(
    `INSERT INTO oidc_payload (model, id, payload, grant_id, uid, user_code, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7::int IS NULL THEN NULL ELSE now() + make_interval(secs => $7::int) END)
     ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
       user_code = excluded.user_code, expires_at = excluded.expires_at, consumed_at = NULL`,
    [
      model,
      id,
      payload,
      typeof payload.grantId === 'string' ? payload.grantId : null,
      typeof payload.uid === 'string' ? payload.uid : null,
      typeof payload.userCode === 'string' ? payload.userCode : null,
      expiresInSeconds === undefined ? null : Math.max(1, Math.ceil(expiresInSeconds)),
    ],
  );
}

const LIVE = '(expires_at IS NULL OR expires_at > now())';

function withConsumed(row: { payload: Payload; consumed_at: Date | null } | undefined): Payload | undefined {
  if (!row) return undefined;
  return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
}

export async function find(db: Queryable, model: string, id: string): Promise<Payload | undefined> {
  const result = await db.query<{ payload: Payload; consumed_at: Date | null }>(`SELECT payload, consumed_at FROM oidc_payload WHERE model = $1 AND id = $2 AND ${LIVE}`, [model, id]);
  return withConsumed(result.rows[0]);
}

export async function findByUid(db: Queryable, model: string, uid: string): Promise<Payload | undefined> {
  const result = await db.query<{ payload: Payload; consumed_at: Date | null }>(`SELECT payload, consumed_at FROM oidc_payload WHERE model = $1 AND uid = $2 AND ${LIVE}`, [model, uid]);
  return withConsumed(result.rows[0]);
}

export async function findByUserCode(db: Queryable, model: string, userCode: string): Promise<Payload | undefined> {
  const result = await db.query<{ payload: Payload; consumed_at: Date | null }>(`SELECT payload, consumed_at FROM oidc_payload WHERE model = $1 AND user_code = $2 AND ${LIVE}`, [model, userCode]);
  return withConsumed(result.rows[0]);
}

export async function consume(db: Queryable, model: string, id: string): Promise<void> {
  await db.query('UPDATE oidc_payload SET consumed_at = now() WHERE model = $1 AND id = $2 AND consumed_at IS NULL', [model, id]);
}

export async function destroy(db: Queryable, model: string, id: string): Promise<void> {
  await db.query('DELETE FROM oidc_payload WHERE model = $1 AND id = $2', [model, id]);
}

export async function revokeByGrant(db: Queryable, grantId: string): Promise<void> {
  await db.query('DELETE FROM oidc_payload WHERE grant_id = $1', [grantId]);
}

/** Deletes up to `limit` expired rows; returns how many went. Run periodically: reads ignore expired rows anyway. */
export async function deleteExpired(db: Queryable, limit = 10_000): Promise<number> {
  const result = await db.query(
    `DELETE FROM oidc_payload WHERE ctid IN (SELECT ctid FROM oidc_payload WHERE expires_at <= now() LIMIT $1)`,
    [limit],
  );
  return result.rowCount ?? 0;
}
