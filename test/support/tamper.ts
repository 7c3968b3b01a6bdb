/**
 * Tampering with stored records as someone with write access to the database (and the keys) would: a sealed row is
 * opened, edited and sealed again under its own key, so that it still opens and only what it says has changed; a
 * plain row is edited in place. Tests of the proofs and the audit use these to check that such an edit is caught by
 * the hashes, not by a ciphertext that no longer opens.
 */
import type pg from 'pg';
import { stringifyJson } from '../../anchor/index.ts';
import { encryption, resources, type Queryable } from '../../store/index.ts';

/**
 * Replaces the content of a stored resource version with `edit(content)`. A sealed version is sealed again under the
 * patient key it names (the pool's keyring unwraps it), with the same associated data, so it opens as before.
 */
export async function tamperVersion(pool: pg.Pool, resourceType: string, id: string, versionId: number, edit: (content: Record<string, any>) => Record<string, any>): Promise<void> {
  const row = (await pool.query<{ key_id: string | null; wrapped_dek: Buffer | null; kek_id: string | null }>(
    `SELECT h.key_id, k.wrapped_dek, k.kek_id FROM fhir_resource_history h LEFT JOIN patient_key k ON k.id = h.key_id
      WHERE h.resource_type = $1 AND h.id = $2 AND h.version_id = $3`,
    [resourceType, id, versionId],
  )).rows[0];
  if (row === undefined) throw new Error(`no stored version ${resourceType}/${id}/_history/${versionId}`);
  const current = await resources.readVersion(pool, resourceType, id, versionId);
  const edited = edit(structuredClone(current!.content));
  if (row.key_id === null) {
    await pool.query(`UPDATE fhir_resource_history SET content = $4::jsonb WHERE resource_type = $1 AND id = $2 AND version_id = $3`, [resourceType, id, versionId, stringifyJson(edited)]);
    return;
  }
  const keyring = needKeyring(pool);
  const key = { keyId: Number(row.key_id), dek: await keyring.dekOf(Number(row.key_id), row.wrapped_dek!, row.kek_id!) };
  const sealed = encryption.sealVersion(key, resourceType, id, versionId, edited);
  await pool.query(`UPDATE fhir_resource_history SET sealed = $4 WHERE resource_type = $1 AND id = $2 AND version_id = $3`, [resourceType, id, versionId, sealed]);
}

/**
 * Replaces the raw bytes of an inbox message with `edit(raw)`, leaving raw_sha256 as it was. Sealed bytes are sealed
 * again under the message's own key, bound to the stored raw_sha256, so they open as before.
 */
export async function tamperRaw(pool: pg.Pool, messageId: number, edit: (raw: Buffer) => Buffer): Promise<void> {
  const rows = (await pool.query<encryption.RawRow>(`SELECT m.id, m.raw, m.raw_sha256, ${encryption.RAW_KEY_COLUMNS} FROM inbox_message m WHERE m.id = $1`, [messageId])).rows;
  if (rows.length === 0) throw new Error(`no inbox message ${messageId}`);
  await encryption.openRawRows(pool, rows);
  const row = rows[0]!;
  const edited = edit(Buffer.from(row.raw));
  const stored = row.message_key === undefined ? edited : encryption.seal(row.message_key, edited, encryption.rawAad(row.raw_sha256));
  await pool.query(`UPDATE inbox_message SET raw = $2 WHERE id = $1`, [messageId, stored]);
}

function needKeyring(db: Queryable): encryption.Keyring {
  const keyring = encryption.keyringOf(db);
  if (keyring === undefined) throw new Error('a sealed row is tampered with through a pool without the engine keyring');
  return keyring;
}

/** XORs byte `offset` of each message's raw bytes with `mask` (sealed again where sealed): run twice, it puts them back. */
export async function flipRawByte(pool: pg.Pool, messageIds: number[], offset: number, mask = 1): Promise<void> {
  for (const id of messageIds) {
    await tamperRaw(pool, id, (bytes) => {
      bytes[offset] = bytes[offset]! ^ mask;
      return bytes;
    });
  }
}
