/**
 * Master key rotation: re-wraps every data key that an older master key wrapped under the current one.
 *
 * Contract:
 * - The caller first makes a new master key current (FileKms.rotate, or the cloud KMS's own rotation); from then
 *   on new keys are wrapped under it, while every older master key still unwraps what it wrapped. A running process
 *   reads the key file again within FileKms.reloadMs, so it stops wrapping under the old key shortly after.
 * - rewrapMasterKeys re-wraps in short transactions of at most `batchRows` keys (patient keys and the search index key, then the keys of
 *   messages not yet under a patient's key), skipping rows another transaction holds (they are taken on the next
 *   pass): the engine keeps running and nothing is sealed again, only the 32-byte keys are re-wrapped. Running it
 *   twice is harmless. It returns how many keys still name another master key (0 when it ran undisturbed).
 * - A master key may be retired (removed from the key file) only once nothing names it: retireMasterKey checks.
 */
import type pg from 'pg';
import { withTransaction, type Queryable } from './db.ts';
import type { Keyring } from './keys.ts';
import type { FileKms, KeyManagementService } from './kms.ts';

export interface RewrapReport {
  /** The master key everything is now wrapped under. */
  keyId: string;
  patientKeys: number;
  messageKeys: number;
  /** Keys still wrapped under another master key (written meanwhile by a process that had not seen the rotation). */
  remaining: number;
}

/**
 * Keys wrapped under each master key: patient keys, messages' own keys (those not yet under a patient's), and the
 * search index key (store/blind-index.ts), counted with the patient keys.
 */
export async function keysByMasterKey(db: Queryable): Promise<Map<string, { patientKeys: number; messageKeys: number }>> {
  const result = await db.query<{ kek_id: string; patient_keys: number; message_keys: number }>(
    `SELECT kek_id, sum(p)::int AS patient_keys, sum(m)::int AS message_keys FROM (
       SELECT kek_id, count(*) AS p, 0 AS m FROM patient_key WHERE kek_id IS NOT NULL GROUP BY kek_id
       UNION ALL SELECT kek_id, count(*), 0 FROM search_index_key WHERE kek_id IS NOT NULL GROUP BY kek_id
       UNION ALL SELECT raw_kek, 0, count(*) FROM inbox_message WHERE raw_kek IS NOT NULL GROUP BY raw_kek) x
     GROUP BY kek_id ORDER BY kek_id`,
  );
  return new Map(result.rows.map((row) => [row.kek_id, { patientKeys: row.patient_keys, messageKeys: row.message_keys }]));
}

/** Where wrapped keys live: a table, its wrapped-key column and the column naming the master key that wrapped it. */
interface WrappedKeyColumns {
  table: 'patient_key' | 'inbox_message' | 'search_index_key';
  key: 'wrapped_dek' | 'raw_key' | 'wrapped_key';
  kek: 'kek_id' | 'raw_kek';
}

const PATIENT_KEYS: WrappedKeyColumns = { table: 'patient_key', key: 'wrapped_dek', kek: 'kek_id' };
const MESSAGE_KEYS: WrappedKeyColumns = { table: 'inbox_message', key: 'raw_key', kek: 'raw_kek' };
const INDEX_KEY: WrappedKeyColumns = { table: 'search_index_key', key: 'wrapped_key', kek: 'kek_id' };

/** Re-wraps every key of one table that another master key than `current` wrapped, in batches; returns how many. */
async function rewrapColumns(pool: pg.Pool, kms: KeyManagementService, current: string, batchRows: number, { table, key, kek }: WrappedKeyColumns): Promise<number> {
  let total = 0;
  for (;;) {
    const done = await withTransaction(pool, async (client) => {
      const rows = await client.query<{ id: number; wrapped: Buffer; kek: string }>(
        `SELECT id, ${key} AS wrapped, ${kek} AS kek FROM ${table} WHERE ${kek} IS NOT NULL AND ${kek} <> $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [current, batchRows],
      );
      if (rows.rows.length === 0) return 0;
      const wrapped: Buffer[] = [];
      for (const row of rows.rows) wrapped.push((await kms.wrap(await kms.unwrap(row.wrapped, row.kek))).wrapped);
      await client.query(
        `UPDATE ${table} t SET ${key} = n.wrapped, ${kek} = $3 FROM unnest($1::bigint[], $2::bytea[]) AS n(id, wrapped) WHERE t.id = n.id`,
        [rows.rows.map((row) => row.id), wrapped, current],
      );
      return rows.rows.length;
    });
    total += done;
    if (done < batchRows) return total;
  }
}

export async function rewrapMasterKeys(pool: pg.Pool, keyring: Keyring, options: { batchRows?: number } = {}): Promise<RewrapReport> {
  const kms: KeyManagementService = keyring.kms;
  const current = kms.currentKeyId;
  const batchRows = options.batchRows ?? 500;
  const patientKeys = (await rewrapColumns(pool, kms, current, batchRows, PATIENT_KEYS)) + (await rewrapColumns(pool, kms, current, batchRows, INDEX_KEY));
  const messageKeys = await rewrapColumns(pool, kms, current, batchRows, MESSAGE_KEYS);
  let remaining = 0;
  for (const [keyId, counts] of await keysByMasterKey(pool)) if (keyId !== current) remaining += counts.patientKeys + counts.messageKeys;
  return { keyId: current, patientKeys, messageKeys, remaining };
}

/** Removes an old master key from the key file, refusing while any key is still wrapped under it. */
export async function retireMasterKey(db: Queryable, kms: FileKms, keyId: string): Promise<void> {
  const counts = (await keysByMasterKey(db)).get(keyId);
  if (counts !== undefined && counts.patientKeys + counts.messageKeys > 0) {
    throw new Error(`master key ${keyId} still wraps ${counts.patientKeys} patient keys and ${counts.messageKeys} message keys; run the re-wrap again first`);
  }
  await kms.retire(keyId);
}
