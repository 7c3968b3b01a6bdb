/**
 * Building the search index: rows for a resource, and the rebuild of every current resource's rows when the index key
 * changes (store/blind-index.ts says what the rows hold and why).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../config/logger.ts';
import { AnchorlineError } from '../errors/index.ts';
import { BlindIndex, PUBLIC_BLIND_INDEX, readKeyRow, rememberBlindIndex, unwrapKeyRow, type BlindStringRow, type BlindTokenRow, type BlindVocabularyRow } from './blind-index.ts';
import { withTransaction, type Queryable } from './db.ts';
import { keyringOf } from './keys.ts';
import { currentResourcesAfter } from './resources.ts';

const KEY_BYTES = 32;

/** Inserts a rebuild's index rows, and the vocabulary (blind-index.ts VOCABULARY_PARAMS) that is not there yet. */
export async function insertIndexRows(client: Queryable, tokens: BlindTokenRow[], strings: BlindStringRow[], vocabulary: BlindVocabularyRow[] = []): Promise<void> {
  const col = (rows: ReadonlyArray<ReadonlyArray<string | null>>, n: number): Array<string | null> => rows.map((r) => r[n]!);
  if (tokens.length > 0) {
    await client.query(
      `INSERT INTO fhir_search_token (resource_type, id, param, code_hash, token_hash, reference)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])`,
      [0, 1, 2, 3, 4, 5].map((n) => col(tokens, n)),
    );
  }
  if (strings.length > 0) {
    await client.query('INSERT INTO fhir_search_string (resource_type, id, param, value_hash) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])', [0, 1, 2, 3].map((n) => col(strings, n)));
  }
  if (vocabulary.length > 0) {
    await client.query(
      'INSERT INTO fhir_search_vocabulary (resource_type, param, prefix_hash, value_hash) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) ON CONFLICT DO NOTHING',
      [0, 1, 2, 3].map((n) => col(vocabulary, n)),
    );
  }
}

export interface SearchIndexReport {
  /** 'ready' when the index was built with the key in use; 'rebuilt' when this start rebuilt it. */
  state: 'ready' | 'rebuilt';
  fingerprint: string;
  resources: number;
}

/**
 * Makes the search index match the key this deployment searches with, before anything is served: on a database
 * whose index was never built with a key (new, or migrated from the plain index of 0001), and when a deployment
 * that had no master key gets one, it draws a new index key and rebuilds every current resource's rows from the
 * resources themselves (sealed ones opened), in one transaction, so a search never sees half an index. Processes
 * starting together wait on one advisory lock; the later ones find the index ready. A keyed index with no master
 * key to unwrap its key is refused (ANCHORLINE_ERR_KEY_UNAVAILABLE): its rows, and the sealed records, need it.
 */
export async function ensureSearchIndex(pool: pg.Pool, log: Logger, options: { batchResources?: number } = {}): Promise<SearchIndexReport> {
  const keyring = keyringOf(pool);
  const batch = options.batchResources ?? 500;
  return withTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('anchorline-search-index:' || current_schema()))");
    const row = await readKeyRow(client);
    if (row !== undefined && (row.wrapped_key !== null || keyring === undefined)) {
      if (row.wrapped_key !== null && keyring === undefined) {
        throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'the search index is keyed under the master key, and this process has none (encryption.masterKeyFile)');
      }
      if (keyring !== undefined) rememberBlindIndex(keyring, await unwrapKeyRow(keyring, row));
      return { state: 'ready', fingerprint: row.fingerprint, resources: 0 };
    }
    // A new index key: random under a master key, else the public one.
    let index = PUBLIC_BLIND_INDEX;
    let wrapped: { wrapped: Buffer; keyId: string } | undefined;
    if (keyring !== undefined) {
      const key = randomBytes(KEY_BYTES);
      index = new BlindIndex(key);
      wrapped = await keyring.kms.wrap(key);
    }
    await client.query('DELETE FROM fhir_search_token');
    await client.query('DELETE FROM fhir_search_string');
    await client.query('DELETE FROM fhir_search_vocabulary');
    let resources = 0;
    let after: { resourceType: string; id: string } | undefined;
    for (;;) {
      const page = await currentResourcesAfter(client, after, batch);
      if (page.length === 0) break;
      const tokens: BlindTokenRow[] = [];
      const strings: BlindStringRow[] = [];
      const vocabulary = new Map<string, BlindVocabularyRow>();
      for (const resource of page) {
        if (resource.deleted) continue;
        const rows = index.rows(resource);
        for (const each of rows.tokens) tokens.push(each);
        for (const each of rows.strings) strings.push(each);
        for (const each of rows.vocabulary) vocabulary.set(each.join('\u0000'), each);
        resources += 1;
      }
      await insertIndexRows(client, tokens, strings, [...vocabulary.values()]);
      after = page.at(-1)!;
      if (resources > 0 && resources % 10_000 < batch) log.info({ resources }, 'store: rebuilding the search index');
    }
    await client.query(
      `INSERT INTO search_index_key (id, wrapped_key, kek_id, fingerprint) VALUES (1, $1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET wrapped_key = EXCLUDED.wrapped_key, kek_id = EXCLUDED.kek_id, fingerprint = EXCLUDED.fingerprint, built_at = now()`,
      [wrapped?.wrapped ?? null, wrapped?.keyId ?? null, index.fingerprint],
    );
    if (keyring !== undefined) rememberBlindIndex(keyring, index);
    if (resources > 0) log.info({ resources, keyed: wrapped !== undefined }, 'store: search index rebuilt');
    return { state: 'rebuilt', fingerprint: index.fingerprint, resources };
  });
}
