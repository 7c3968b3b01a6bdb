/**
 * Patient key rotation: every record of one patient re-sealed under a new data key, and the old key destroyed.
 *
 * Contract:
 * - rotatePatientKey makes the patient's next key version (patient_key, wrapped under the current master key), in a
 *   transaction that locks their live key rows as an erasure does. A patient normally has one live key; two or more
 *   mean a rotation was interrupted (a crash, a restart), and then no key is made: the newest one is the target and
 *   the rotation carries on, so running it again finishes what the last run began.
 * - From the commit of the new key on, writers seal under it: Keyring.patientKeys reads the newest live key version
 *   of a patient in each statement. A writer whose transaction read the old key before that commit (the ingest worker
 *   mapping a message of the patient just then) still commits rows under the old key: the passes below take them.
 * - Resource versions sealed under an old key, and raw messages whose key is wrapped under one, are re-sealed in
 *   short transactions of at most batchRows rows each: opened under the old key and sealed under the new one with the
 *   same associated data. Rows another transaction holds are skipped and taken on the next pass. Readers open either
 *   key meanwhile, since each row names its own. The plaintext does not change, so neither do resourceSha256, any leaf
 *   or any proof; a raw message's bytes are not written at all, only its 32-byte key is re-wrapped.
 * - An old key is destroyed (wrapped_dek emptied, destroyed_at set, as an erasure does) only when nothing names it
 *   and every transaction that began before the last pass has ended: such a transaction may have read the old key or
 *   a row still under it, and may yet read that key, or write under it. A reader outside a transaction that reads a
 *   raw message's row and then its key in a second statement gets readerGraceMs more. If some transaction does not
 *   end within drainTimeoutMs, the old key stays live (everything is already under the new one) and the report says
 *   so; running the rotation again destroys it.
 * - An erasure of the patient meanwhile wins: every batch holds the patient's key rows FOR SHARE, so the erasure
 *   waits for the batch, destroys every key, old and new, and the rotation then stops with ANCHORLINE_ERR_NOT_FOUND.
 * Nothing here logs a key or a record.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { withTransaction } from './db.ts';
import { keyringOf, messageKeyAad, open, seal, versionAad, type Keyring } from './keys.ts';
import { PATIENT_REFERENCE } from './compartment.ts';

export interface PatientKeyRotationOptions {
  /** Rows re-sealed per transaction at most (of resource versions, and again of raw messages). Default 500. */
  batchRows?: number;
  /** Longest wait for the transactions that may still use an old key, in ms, before it is left live. Default 60000. */
  drainTimeoutMs?: number;
  /** Extra wait after those ended, in ms, for readers between two statements outside a transaction. Default 1000. */
  readerGraceMs?: number;
}

export interface PatientKeyRotationReport {
  patient: string;
  /** patient_key.id and key version everything of the patient is now sealed under. */
  keyId: number;
  keyVersion: number;
  /** The keys it replaced (patient_key ids). */
  replacedKeys: number[];
  /** How many of those are destroyed now; fewer than replacedKeys when a transaction did not end in time. */
  destroyedKeys: number;
  /** Resource versions re-sealed. */
  versions: number;
  /** Raw messages whose key was re-wrapped. */
  messages: number;
  /** This run finished a rotation that an earlier run began. */
  resumed: boolean;
}

const KEY_BYTES = 32;
const DRAIN_POLL_MS = 50;

/** Rotates a patient's key (see the contract above). The pool's keyring must be attached (store/keys.ts). */
export async function rotatePatientKey(pool: pg.Pool, patient: string, options: PatientKeyRotationOptions = {}): Promise<PatientKeyRotationReport> {
  if (!PATIENT_REFERENCE.test(patient)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the patient whose key rotates is named as Patient/<id>');
  const keyring = keyringOf(pool);
  if (keyring === undefined) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a patient key cannot rotate without the encryption keys (encryption.masterKeyFile)');
  const batchRows = options.batchRows ?? 500;
  const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
  const readerGraceMs = options.readerGraceMs ?? 1_000;

  const target = await nextKey(pool, keyring, patient);
  const counts = { versions: 0, messages: 0 };
  const pass = async (): Promise<number> => {
    let moved = 0;
    for (;;) {
      const batch = await resealBatch(pool, keyring, patient, target.keyId, target.replaced, batchRows);
      counts.versions += batch.versions;
      counts.messages += batch.messages;
      moved += batch.versions + batch.messages;
      // Rows another transaction held were skipped: that transaction began before the drain below, so the pass
      // after the drain takes them.
      if (batch.versions < batchRows && batch.messages < batchRows) return moved;
    }
  };

  await pass();
  let destroyedKeys = 0;
  for (;;) {
    // Every transaction begun before this instant may have read an old key or a row under it; wait them out.
    if (!(await drain(pool, drainTimeoutMs))) break;
    await sleep(readerGraceMs);
    // What such a transaction committed under an old key since the last pass; if any, wait again for its readers.
    if ((await pass()) > 0) continue;
    const destroyed = await destroyReplaced(pool, target.replaced);
    if (destroyed === undefined) continue;
    destroyedKeys = destroyed;
    keyring.forget(target.replaced);
    break;
  }
  return { patient, keyId: target.keyId, keyVersion: target.keyVersion, replacedKeys: target.replaced, destroyedKeys, ...counts, resumed: target.resumed };
}

/** The key to rotate to: a new version, or the newest live one when an earlier rotation was interrupted. */
async function nextKey(pool: pg.Pool, keyring: Keyring, patient: string): Promise<{ keyId: number; keyVersion: number; replaced: number[]; resumed: boolean }> {
  return withTransaction(pool, async (client) => {
    // Locked as an erasure locks them: an erasure and a rotation of one patient take turns.
    const live = await client.query<{ id: string; key_version: number }>(
      'SELECT id, key_version FROM patient_key WHERE patient = $1 AND destroyed_at IS NULL ORDER BY id FOR UPDATE',
      [patient],
    );
    if (live.rows.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${patient} has no live key: nothing of theirs is sealed, or it was erased`);
    const byVersion = [...live.rows].sort((a, b) => a.key_version - b.key_version);
    if (byVersion.length > 1) {
      const newest = byVersion.at(-1)!;
      return { keyId: Number(newest.id), keyVersion: newest.key_version, replaced: byVersion.slice(0, -1).map((row) => Number(row.id)), resumed: true };
    }
    const { wrapped, keyId: kekId } = await keyring.kms.wrap(randomBytes(KEY_BYTES));
    const inserted = await client.query<{ id: string; key_version: number }>(
      `INSERT INTO patient_key (patient, key_version, wrapped_dek, kek_id)
       SELECT $1, max(key_version) + 1, $2, $3 FROM patient_key WHERE patient = $1 RETURNING id, key_version`,
      [patient, wrapped, kekId],
    );
    const row = inserted.rows[0]!;
    return { keyId: Number(row.id), keyVersion: row.key_version, replaced: [Number(byVersion[0]!.id)], resumed: false };
  });
}

/** One short transaction: up to batchRows versions and batchRows raw message keys moved from the old keys to the new. */
async function resealBatch(pool: pg.Pool, keyring: Keyring, patient: string, targetId: number, replaced: number[], batchRows: number): Promise<{ versions: number; messages: number }> {
  return withTransaction(pool, async (client) => {
    // FOR SHARE: an erasure (FOR UPDATE) waits for this batch, and this batch sees whether one came first.
    const keys = await client.query<{ id: string; wrapped_dek: Buffer | null; kek_id: string | null }>(
      'SELECT id, wrapped_dek, kek_id FROM patient_key WHERE id = ANY($1::bigint[]) ORDER BY id FOR SHARE',
      [[targetId, ...replaced]],
    );
    const deks = new Map<number, Buffer>();
    for (const key of keys.rows) {
      if (key.wrapped_dek === null || key.kek_id === null) {
        // An old key already destroyed with nothing under it is a finished rotation's; any other is an erasure's.
        if (Number(key.id) !== targetId && (await namesKey(client, [Number(key.id)])) === 0) continue;
        throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${patient}'s keys were destroyed while their key rotated (an erasure)`);
      }
      deks.set(Number(key.id), await keyring.dekOf(Number(key.id), key.wrapped_dek, key.kek_id));
    }
    const targetDek = deks.get(targetId);
    if (targetDek === undefined) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${patient}'s new key is gone`);
    const live = replaced.filter((id) => deks.has(id));
    if (live.length === 0) return { versions: 0, messages: 0 };

    const versions = await client.query<{ resource_type: string; id: string; version_id: number; sealed: Buffer; key_id: string }>(
      `SELECT resource_type, id, version_id, sealed, key_id FROM fhir_resource_history WHERE key_id = ANY($1::bigint[])
        ORDER BY key_id, resource_type, id, version_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [live, batchRows],
    );
    if (versions.rows.length > 0) {
      const resealed = versions.rows.map((row) => {
        const aad = versionAad(row.resource_type, row.id, Number(row.version_id));
        return seal(targetDek, open(deks.get(Number(row.key_id))!, row.sealed, aad), aad);
      });
      await client.query(
        `UPDATE fhir_resource_history h SET sealed = n.sealed, key_id = $5
           FROM unnest($1::text[], $2::text[], $3::int[], $4::bytea[]) AS n(resource_type, id, version_id, sealed)
          WHERE h.resource_type = n.resource_type AND h.id = n.id AND h.version_id = n.version_id`,
        [versions.rows.map((row) => row.resource_type), versions.rows.map((row) => row.id), versions.rows.map((row) => row.version_id), resealed, targetId],
      );
    }

    const messages = await client.query<{ id: string; raw_key: Buffer; raw_key_id: string }>(
      'SELECT id, raw_key, raw_key_id FROM inbox_message WHERE raw_key_id = ANY($1::bigint[]) ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED',
      [live, batchRows],
    );
    if (messages.rows.length > 0) {
      const rewrapped = messages.rows.map((row) => {
        const aad = messageKeyAad(Number(row.id));
        return seal(targetDek, open(deks.get(Number(row.raw_key_id))!, row.raw_key, aad), aad);
      });
      await client.query(
        'UPDATE inbox_message m SET raw_key = n.raw_key, raw_key_id = $3 FROM unnest($1::bigint[], $2::bytea[]) AS n(id, raw_key) WHERE m.id = n.id',
        [messages.rows.map((row) => row.id), rewrapped, targetId],
      );
    }
    return { versions: versions.rows.length, messages: messages.rows.length };
  });
}

/** Resource versions and raw messages that still name one of `keyIds`. */
async function namesKey(client: pg.PoolClient, keyIds: number[]): Promise<number> {
  const result = await client.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM fhir_resource_history WHERE key_id = ANY($1::bigint[]))::int
          + (SELECT count(*) FROM inbox_message WHERE raw_key_id = ANY($1::bigint[]))::int AS n`,
    [keyIds],
  );
  return result.rows[0]!.n;
}

/**
 * Waits until every transaction of this database that began before now has ended (as CREATE INDEX CONCURRENTLY waits
 * for older snapshots). pg_stat_activity shows the engine's own sessions to its own role. False after timeoutMs.
 */
async function drain(pool: pg.Pool, timeoutMs: number): Promise<boolean> {
  const since = (await pool.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const older = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start < $1`,
      [since],
    );
    if (older.rows[0]!.n === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(DRAIN_POLL_MS);
  }
}

/** Destroys the replaced keys if nothing names them (checked under their lock); undefined if something still does. */
async function destroyReplaced(pool: pg.Pool, replaced: number[]): Promise<number | undefined> {
  return withTransaction(pool, async (client) => {
    await client.query('SELECT id FROM patient_key WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE', [replaced]);
    if ((await namesKey(client, replaced)) > 0) return undefined;
    const destroyed = await client.query(
      'UPDATE patient_key SET wrapped_dek = NULL, kek_id = NULL, destroyed_at = now() WHERE id = ANY($1::bigint[]) AND destroyed_at IS NULL',
      [replaced],
    );
    return destroyed.rowCount ?? 0;
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
