/**
 * The search index as blind indexes: keyed hashes of what is searched for, never the values themselves.
 *
 * Records are sealed under their patients' keys (store/keys.ts), so the index beside them must not hold the names,
 * identifiers (a 주민등록번호 is an identifier) and diagnosis codes in clear. Each searchable value is stored as
 * HMAC-SHA-256 under one index key, over a domain, the parameter and the value, cut to 64 bits:
 * - Blind indexes (keyed hashes), not an encrypted index, because FHIR token search and `:exact` are equality and
 *   FHIR string search is "starts with": equality of a keyed hash answers both (a prefix is hashed per length), in
 *   one B-tree probe, with nothing to decrypt at query time. Order-preserving or searchable encryption would leak
 *   more (order) or cost far more per row.
 * - Keyed, so that without the key a row cannot be confirmed by hashing a guess (an unkeyed hash of a resident
 *   number or a name is reversed by trying them all). The key is random, wrapped under the master key (table
 *   search_index_key), re-wrapped with the master key on rotation, and held by every process that holds the master
 *   key. One key for all patients, not a patient's own: a search does not know the patient it will find.
 * - The parameter is hashed in, so equal values under two parameters (an identifier and an altid) do not link.
 * - 64 bits: the index stays small (a bigint per row instead of a system URI and a code), and a false match needs
 *   two values of one parameter to collide, about one in 2^64 per comparison; an erasure removes a patient's rows
 *   in any case, so the bits kept protect nothing after it.
 * What a blind index does reveal, to whoever reads the tables without the key: which rows share a value (how many
 *   records carry one code, that two resources have one identifier), and for strings how long a value is and which
 *   values share a first letter. That is the usual price of searching without decrypting (CipherSweet documents the
 *   same trade). Reference parameters keep their target ('Type/id'): resource ids are pseudonyms the store makes, and
 *   _include and the patient compartment read where a reference points.
 *
 * String prefixes are indexed up to PREFIX_CHARS characters; a longer search string is matched on its first
 * PREFIX_CHARS characters (the whole value still matches `:exact`).
 *
 * Without a master key (encryption never enabled) the key is a fixed public one: the rows are then only a compact
 * index, and the first start with encryption on rebuilds them under a secret key (ensureSearchIndex).
 */
import { createHash, createHmac } from 'node:crypto';
import { AnchorlineError } from '../errors/index.ts';
import { BoundedCache } from './bounded-cache.ts';
import type { Queryable } from './db.ts';
import { keyringOf, type Keyring } from './keys.ts';
import { normaliseSearchString, SEARCH_PARAMETERS, searchEntries } from './search-index.ts';

/** Characters of a string value indexed as prefixes: what a "starts with" search can tell apart. */
export const PREFIX_CHARS = 32;

/**
 * Hashes a BlindIndex remembers per generation (about 200 bytes each: the input and the decimal hash); it holds two
 * generations at most.
 */
const HASH_CACHE_ENTRIES = 50_000;

/** [resource_type, id, param, code_hash, token_hash, reference] */
export type BlindTokenRow = [string, string, string, string, string, string | null];
/** [resource_type, id, param, value_hash] */
export type BlindStringRow = [string, string, string, string];
/** [resource_type, param, prefix_hash, value_hash]: a prefix of a vocabulary parameter's value (VOCABULARY_PARAMS). */
export type BlindVocabularyRow = [string, string, string, string];

/**
 * String parameters searched through a vocabulary (table fhir_search_vocabulary): their values are few and repeat on
 * many resources, so each resource's row holds only the hash of the whole value, and the prefixes that a "starts
 * with" search looks for are stored once per distinct value. An AuditEvent's agent-name is the name of a sender, user
 * or app, on every event: its prefixes were more than half the string rows an imported message wrote.
 */
export const VOCABULARY_PARAMS: Readonly<Record<string, ReadonlySet<string>>> = { AuditEvent: new Set(['agent-name']) };

function inVocabulary(resourceType: string, param: string): boolean {
  return Object.hasOwn(VOCABULARY_PARAMS, resourceType) && VOCABULARY_PARAMS[resourceType]!.has(param);
}

/** Vocabulary values a connection remembers as stored (about 100 bytes each; two generations at most). */
const VOCABULARY_CACHE_ENTRIES = 4_096;

/**
 * Per connection (a connection reaches one database and schema for its life), the vocabulary values it saw stored
 * by another transaction: a write that found every prefix row of a value already there. Vocabulary rows are removed
 * only with the key that made them (a rebuild), so what is remembered stays true; a value is never taken as stored
 * on the word of the transaction that wrote it, which could still roll back.
 */
const vocabularyStored = new WeakMap<object, BoundedCache<string, true>>();

const vocabularyKey = (type: string, param: string, valueHash: string): string => `${type}\u0000${param}\u0000${valueHash}`;

/** The vocabulary rows a write through `db` must still offer: those of values it has not seen stored. */
export function unknownVocabulary(db: Queryable, rows: readonly BlindVocabularyRow[]): BlindVocabularyRow[] {
  const known = vocabularyStored.get(db);
  const fresh = new Map<string, BlindVocabularyRow>();
  // A value's prefixes come together (rows() emits them in a run): its cache entry is looked up once per run.
  let last: { value: string; type: string; param: string; stored: boolean } | undefined;
  for (const row of rows) {
    const [type, param, prefix, value] = row;
    if (last?.value !== value || last.type !== type || last.param !== param) last = { value, type, param, stored: known?.get(vocabularyKey(type, param, value)) === true };
    if (!last.stored) fresh.set(`${vocabularyKey(type, param, value)}\u0000${prefix}`, row);
  }
  // One order for every writer: two transactions offering the same new rows then wait on each other, not deadlock.
  return [...fresh.keys()].sort().map((key) => fresh.get(key)!);
}

/**
 * Notes what a write of `offered` vocabulary rows found: values none of whose rows it inserted (`inserted`, what its
 * INSERT ... ON CONFLICT DO NOTHING returned) were stored before it, and are not offered again on this connection.
 */
export function noteVocabulary(db: Queryable, offered: readonly BlindVocabularyRow[], inserted: ReadonlyArray<{ resource_type: string; param: string; value_hash: string }>): void {
  if (offered.length === 0) return;
  let known = vocabularyStored.get(db);
  if (known === undefined) vocabularyStored.set(db, (known = new BoundedCache<string, true>(VOCABULARY_CACHE_ENTRIES)));
  const written = new Set(inserted.map((r) => vocabularyKey(r.resource_type, r.param, String(r.value_hash))));
  for (const [type, param, , value] of offered) {
    const key = vocabularyKey(type, param, value);
    if (!written.has(key)) known.set(key, true);
  }
}

export class BlindIndex {
  /** Names the key without revealing it: 'public', or 16 hex digits of SHA-256 over a domain and the key. */
  readonly fingerprint: string;
  private readonly key: Buffer;
  /** Hashes of recent inputs (store/bounded-cache.ts says why two generations, not one map trimmed oldest-first). */
  private readonly remembered = new BoundedCache<string, string>(HASH_CACHE_ENTRIES);

  constructor(key: Buffer, fingerprint?: string) {
    this.key = key;
    this.fingerprint = fingerprint ?? createHash('sha256').update('anchorline/search-index/fingerprint\u0000').update(key).digest('hex').slice(0, 16);
  }

  /**
   * 64 bits of HMAC-SHA-256 over the parts, as a bigint in decimal (how pg takes a bigint parameter). Remembered for
   * recent inputs: an HMAC costs microseconds, and most of what is hashed repeats (every read's
   * AuditEvent carries the same type, action and purpose codes; a patient's references recur on each write).
   */
  private hash(domain: string, param: string, ...parts: string[]): string {
    const input = `${domain}\u0000${param}\u0000${parts.join('\u0000')}`;
    const known = this.remembered.get(input);
    if (known !== undefined) return known;
    const hash = createHmac('sha256', this.key).update(input).digest().readBigInt64BE(0).toString();
    this.remembered.set(input, hash);
    return hash;
  }

  /**
   * What an erased message keeps of one of its SHA-256 hashes (of its raw bytes, of its DICOM file): HMAC-SHA-256
   * under the index key over a domain and the hash. A resend of the same bytes gives the same digest, so it is still
   * recognised; the stored value no longer confirms a guess of the erased bytes to whoever reads the table without
   * the key. The index key is the one secret every process holding the master key has, and it is re-wrapped on
   * rotation, never replaced while encryption is on.
   */
  erasedDigest(sha256: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update('anchorline/erased-message-digest\u0000').update(sha256).digest();
  }

  /**
   * The control id of an HL7 v2 message sent without MSH-10 (adapters/hl7v2/intake.ts): `content:` and HMAC-SHA-256
   * under the index key over a domain and the SHA-256 of its bytes. The same bytes give the same id, so a resend is
   * recognised; keyed, so that the id (which an erasure leaves, being the resend key) does not confirm a guess of the
   * erased bytes as a plain hash would.
   */
  contentControlId(rawSha256: Uint8Array): string {
    return `content:${createHmac('sha256', this.key).update('anchorline/content-control-id\u0000').update(rawSha256).digest('hex')}`;
  }

  /** `param=code` (any system). */
  codeHash(param: string, code: string): string {
    return this.hash('code', param, code);
  }

  /** `param=system|code`. */
  tokenHash(param: string, system: string, code: string): string {
    return this.hash('token', param, system, code);
  }

  /** `param:exact=value`, value normalised (normaliseSearchString). */
  exactHash(param: string, value: string): string {
    return this.hash('exact', param, value);
  }

  /** `param=value` ("starts with"), value normalised; longer than PREFIX_CHARS, its first PREFIX_CHARS characters. */
  prefixHash(param: string, value: string): string {
    const chars = Array.from(value);
    return this.hash('prefix', param, chars.length > PREFIX_CHARS ? chars.slice(0, PREFIX_CHARS).join('') : value);
  }

  /**
   * The index rows of one resource version. String rows are what costs: a hash per prefix is a B-tree entry at a
   * random place (about 20 KiB more WAL per new patient when every form of a name had all its prefixes), so a
   * HumanName is indexed once per part, not again per parameter, and its composed forms only where they are searched:
   * - family, given and name share one hash domain (HUMAN_NAME), and `name` rows leave out what family and given
   *   already hold: a `name=` search looks under all three (stringQuery);
   * - the whole name joined without spaces ("홍길동": how names in Han, Hangul or Kana are written and searched) gets
   *   its prefixes; the other composed forms ("john smith", "smith john", "johnsmith") only their exact hash, which a
   *   search for the whole of one still finds.
   */
  rows(resource: { resourceType: string; id: string; content: Record<string, unknown> }): { tokens: BlindTokenRow[]; strings: BlindStringRow[]; vocabulary: BlindVocabularyRow[] } {
    const { resourceType: type, id } = resource;
    const entries = searchEntries(resource.content);
    const kinds = Object.hasOwn(SEARCH_PARAMETERS, type) ? SEARCH_PARAMETERS[type]! : {};
    const tokens = entries.tokens.map((t): BlindTokenRow => [type, id, t.param, this.codeHash(t.param, t.code), this.tokenHash(t.param, t.system, t.code), kinds[t.param] === 'reference' ? t.code : null]);
    const seen = new Set<string>();
    const strings: BlindStringRow[] = [];
    const vocabulary: BlindVocabularyRow[] = [];
    const add = (param: string, hash: string): void => {
      const key = `${param}\u0000${hash}`;
      if (seen.has(key)) return;
      seen.add(key);
      strings.push([type, id, param, hash]);
    };
    const parts = new Set(entries.strings.filter((e) => e.param === 'family' || e.param === 'given').map((e) => e.value));
    for (const { param, value, whole } of entries.strings) {
      const domain = hashDomain(type, param);
      if (domain === HUMAN_NAME && param === 'name' && parts.has(value)) continue;
      const exact = this.exactHash(domain, value);
      add(param, exact);
      if (whole === 'spaced' || (whole === 'joined' && !WRITTEN_WITHOUT_SPACES.test(value))) continue;
      const vocabular = inVocabulary(type, param);
      const chars = Array.from(value);
      let prefix = '';
      for (let n = 0; n < chars.length && n < PREFIX_CHARS; n++) {
        prefix += chars[n];
        const hash = this.hash('prefix', domain, prefix);
        if (vocabular) vocabulary.push([type, param, hash, exact]);
        else add(param, hash);
      }
    }
    return { tokens, strings, vocabulary };
  }

  /**
   * What a string search looks for: the parameters whose rows may match and the hashes that match; undefined for an
   * empty value (every value of the parameter). "Starts with" matches a prefix, or a whole value indexed without its
   * prefixes (a composed form of a name searched for whole). For a vocabulary parameter, `vocabulary` holds the
   * prefix hashes whose values (fhir_search_vocabulary) match too.
   */
  stringQuery(resourceType: string, param: string, value: string, exact: boolean): { params: string[]; hashes: string[]; vocabulary?: string[] } | undefined {
    const normalised = normaliseSearchString(value);
    if (normalised === '') return undefined;
    const domain = hashDomain(resourceType, param);
    const params = domain === HUMAN_NAME && param === 'name' ? ['name', 'family', 'given'] : [param];
    const hashes = exact ? [this.exactHash(domain, normalised)] : [this.prefixHash(domain, normalised), this.exactHash(domain, normalised)];
    // A vocabulary parameter's rows hold whole values: its prefix is looked up in the vocabulary, and still matched
    // directly, as rows written before the vocabulary hold it.
    const vocabulary = !exact && inVocabulary(resourceType, param) ? [this.prefixHash(domain, normalised)] : undefined;
    return { params, hashes, ...(vocabulary ? { vocabulary } : {}) };
  }
}

/** The hash domain of a HumanName's family, given and name parameters, shared so that a part is indexed once. */
const HUMAN_NAME = 'human-name';
/** Scripts whose names are written without spaces between family and given name. */
const WRITTEN_WITHOUT_SPACES = /[\p{Script=Han}\p{Script=Hangul}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** The parameter a string value is hashed under: HUMAN_NAME for a type searched by name, family and given. */
function hashDomain(resourceType: string, param: string): string {
  if (param !== 'name' && param !== 'family' && param !== 'given') return param;
  const kinds = Object.hasOwn(SEARCH_PARAMETERS, resourceType) ? SEARCH_PARAMETERS[resourceType]! : {};
  return kinds.family === 'string' && kinds.given === 'string' ? HUMAN_NAME : param;
}

/** The index of an engine without a master key: a fixed, public key. */
export const PUBLIC_BLIND_INDEX = new BlindIndex(createHash('sha256').update('anchorline/search-index/public-key').digest(), 'public');

/** Index keys unwrapped, per keyring (a WeakMap, not a keyring field: keys.ts does not depend on this file). */
const loaded = new WeakMap<Keyring, BlindIndex>();

export interface KeyRow {
  wrapped_key: Buffer | null;
  kek_id: string | null;
  fingerprint: string;
}

export async function readKeyRow(db: Queryable): Promise<KeyRow | undefined> {
  return (await db.query<KeyRow>('SELECT wrapped_key, kek_id, fingerprint FROM search_index_key WHERE id = 1')).rows[0];
}

export async function unwrapKeyRow(keyring: Keyring, row: KeyRow): Promise<BlindIndex> {
  if (row.wrapped_key === null || row.kek_id === null) return PUBLIC_BLIND_INDEX;
  const index = new BlindIndex(await keyring.kms.unwrap(row.wrapped_key, row.kek_id));
  if (index.fingerprint !== row.fingerprint) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'the search index key does not match the fingerprint its rows were built with');
  return index;
}

/** Makes `index` the one `keyring`'s pools use (after a rebuild drew it, or a start read it). */
export function rememberBlindIndex(keyring: Keyring, index: BlindIndex): void {
  loaded.set(keyring, index);
}

/**
 * The blind index that `db`'s readers and writers use: the keyring's index key (read from search_index_key once per
 * process), or the public one where there is no keyring. Before the first start has made the key row, the public
 * one: ensureSearchIndex then rebuilds whatever was written with it.
 */
export async function blindIndexOf(db: Queryable): Promise<BlindIndex> {
  const keyring = keyringOf(db);
  if (keyring === undefined) return PUBLIC_BLIND_INDEX;
  const known = loaded.get(keyring);
  if (known !== undefined) return known;
  const row = await readKeyRow(db);
  if (row === undefined) return PUBLIC_BLIND_INDEX;
  const index = await unwrapKeyRow(keyring, row);
  loaded.set(keyring, index);
  return index;
}

