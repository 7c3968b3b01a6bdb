/**
 * The proof corpus: genuine and tampered `anchorline-proof/2` bundles and `anchorline-consistency/1` documents, in the
 * manner of transparency-dev's testdata. manifest.json names every file; for each case it says what was changed, the
 * verifier options to use (resource file, raw message file, pinned log key, witness keys and how many must cosign)
 * and exactly which checks must fail, or which rule of the strict JSON reader refuses the file. docs/proofs.md
 * specifies the formats and quotes its worked examples from vectors.json; test/anchor/proofs-testdata.test.ts runs
 * the verifier on every case and requires this generator to reproduce every file byte for byte.
 *
 *   npx tsx testdata/proofs/generate.ts      rewrites every file of this folder but this one
 *
 * Deterministic: the keys are SHA-256 of labels written below (published here, so they prove nothing anywhere
 * else), salts and times are fixed, Ed25519 signing is deterministic, and the witness signs with a fixed clock.
 * The expected failures are written by hand from docs/proofs.md, never computed by running the verifier: the corpus
 * states what the format requires, and the test holds the code to it. Every patient and value is invented.
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import {
  base64ToBytes,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  canonicalBytes,
  checkpointHash,
  leafBytes,
  isLosslessNumber,
  parseStrictJson,
  stringifyJson,
  provenanceLeafHash,
  resourceSha256,
  sha256Hex,
  signAnchorClaim,
  signLogCheckpoint,
  formatLogCheckpoint,
  formatAnchorClaim,
  type AnchorClaim,
  type LeafPreimage,
  type LogCheckpoint,
  type LogProofBundle,
  type ConsistencyDocument,
} from '../../anchor/index.ts';
import {
  Frontier,
  MemoryNodeStore,
  appendLeafHashes,
  consistencyProof,
  cosignedMessage,
  ed25519Cosigner,
  ed25519NoteSigner,
  formatCosignerKey,
  formatSignatureLine,
  formatVerifierKey,
  inclusionProof,
  noteKeyId,
  parseNote,
  signNote,
  treeRoot,
  SIGNATURE_TYPE_ED25519,
  type NoteSigner,
} from '../../anchor/log/index.ts';

// ---------------------------------------------------------------------------------------------------------------
// What the manifest says about each case

/** Verifier options of a case; files are named relative to this folder. */
export interface CaseOptions {
  resource?: string;
  raw?: string;
  /** The log key the auditor pins (a verifier key). */
  logKey?: string;
  /** cosignature/v1 verifier keys the auditor trusts. */
  witnesses?: string[];
  /** How many of `witnesses` must cosign; absent: all of them. */
  witnessesRequired?: number;
}

export interface CorpusCase {
  name: string;
  /** bundle: verifyLogBundle(file). consistency: verifyConsistencyDocument(file). forward: verifyBundleForward(file, consistency). */
  kind: 'bundle' | 'consistency' | 'forward';
  file: string;
  /** The consistency document of a forward case. */
  consistency?: string;
  changed: string;
  options: CaseOptions;
  /** The strict JSON reader's rule that refuses the file (StrictJsonError.rule); then nothing is verified. */
  readError?: 'syntax' | 'duplicate-member' | 'lone-surrogate' | 'too-deep';
  /** Names of the checks that must fail, in the order the verifier reports them; empty: the case verifies. */
  failed?: string[];
  /**
   * For the Ed25519 edge cases: whether the checkpoint signature satisfies the cofactorless equation [S]B = R + [k]A
   * and the cofactored one [8][S]B = [8]R + [8][k]A. Anchorline refuses all of them (docs/proofs.md, "Ed25519").
   */
  equations?: { cofactorless: boolean; cofactored: boolean };
}

export interface Manifest {
  description: string;
  /** Input files that are not cases themselves, with what each holds. */
  inputs: Record<string, string>;
  cases: CorpusCase[];
}

// ---------------------------------------------------------------------------------------------------------------
// Keys, times and the made-up records

const utf8 = new TextEncoder();
const label = (text: string): Uint8Array => sha256(utf8.encode(`anchorline testdata/proofs: ${text} (published, proves nothing)`));

export const ORIGIN = 'anchorline.example/log/testdata';
const OTHER_ORIGIN = 'anchorline.example/log/another';
/** A log that began as anchorline-proof/1 batches: its first checkpoint carries a legacy line. */
const MIGRATED_ORIGIN = 'anchorline.example/log/migrated';
const WITNESS_NAME = 'witness.example/w1';
const UNKNOWN_WITNESS_NAME = 'witness.example/w2';

const LOG_SEED = label('log key');
const IMPOSTOR_SEED = label('another key under the log name');
const OTHER_LOG_SEED = label('key of another log');
const MIGRATED_LOG_SEED = label('key of the migrated log');
const WITNESS_SEED = label('witness key');
const UNKNOWN_WITNESS_SEED = label('unknown witness key');
const TORSION_NONCE_SEED = label('nonce of the hand-made signatures');

/** POSIX seconds of the witness's clock: 2026-01-15T09:10:10Z. */
const WITNESS_TIME = Date.UTC(2026, 0, 15, 9, 10, 10) / 1000;

const logSigner = ed25519NoteSigner(ORIGIN, LOG_SEED);
const impostorSigner = ed25519NoteSigner(ORIGIN, IMPOSTOR_SEED);
const otherLogSigner = ed25519NoteSigner(OTHER_ORIGIN, OTHER_LOG_SEED);
const migratedLogSigner = ed25519NoteSigner(MIGRATED_ORIGIN, MIGRATED_LOG_SEED);
const witness = ed25519Cosigner(WITNESS_NAME, WITNESS_SEED, () => WITNESS_TIME);
const unknownWitness = ed25519Cosigner(UNKNOWN_WITNESS_NAME, UNKNOWN_WITNESS_SEED, () => WITNESS_TIME);

export const LOG_KEY = formatVerifierKey(ORIGIN, SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(LOG_SEED));
const IMPOSTOR_KEY = formatVerifierKey(ORIGIN, SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(IMPOSTOR_SEED));
const MIGRATED_LOG_KEY = formatVerifierKey(MIGRATED_ORIGIN, SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(MIGRATED_LOG_SEED));
export const WITNESS_KEY = formatCosignerKey(WITNESS_NAME, ed25519.getPublicKey(WITNESS_SEED));

/** Leaves in the log, and the sizes at which checkpoints 1, 2 and 3 were signed. */
const LOG_SIZE = 300;
const CHECKPOINT_SIZES = [100, 217, 300] as const;
const CHECKPOINT_TIMES = ['2026-01-15T09:00:00.000Z', '2026-01-15T09:05:00.000Z', '2026-01-15T09:10:00.000Z'] as const;
/** The leaf the bundles prove: an Observation mapped from an HL7 v2 ORU^R01. */
export const FEATURED_LEAF = 137;
/** The AuditEvent of a read: no source message, no mapping. */
const NO_SOURCE_LEAF = 42;
/** SHA-256 of the empty byte string: rawSha256 and mappingSha256 of a record with no source message. */
const NO_SOURCE_SHA256 = sha256Hex(new Uint8Array(0));

/** The resource of the featured leaf as the FHIR API serves it. `5.40` and `5.10` are decimals kept as written. */
const RESOURCE_TEXT = `{
  "resourceType": "Observation",
  "id": "obs-3f9a1c07",
  "meta": {
    "versionId": "1",
    "lastUpdated": "2026-01-15T09:01:12.345Z"
  },
  "status": "final",
  "category": [
    {
      "coding": [
        {
          "system": "http://terminology.hl7.org/CodeSystem/observation-category",
          "code": "laboratory"
        }
      ]
    }
  ],
  "code": {
    "coding": [
      {
        "system": "http://loinc.org",
        "code": "2823-3",
        "display": "Potassium [Moles/volume] in Serum or Plasma"
      }
    ]
  },
  "subject": {
    "reference": "Patient/pat-5d20e8b1"
  },
  "effectiveDateTime": "2026-01-15T08:47:00+09:00",
  "valueQuantity": {
    "value": 5.40,
    "unit": "mmol/L",
    "system": "http://unitsofmeasure.org",
    "code": "mmol/L"
  },
  "referenceRange": [
    {
      "low": { "value": 3.5, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" },
      "high": { "value": 5.10, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" }
    }
  ]
}
`;

/** The message the Observation was mapped from, as received: segments end in CR, no MLLP framing. */
const RAW_MESSAGE =
  'MSH|^~\\&|LAB-EAST|GENERAL-HOSP|ANCHORLINE|GENERAL-HOSP|20260115084800||ORU^R01^ORU_R01|LAB-20260115-0042|P|2.5.1|||||KOR|UNICODE UTF-8\r' +
  'PID|1||MRN-004711^^^GENERAL-HOSP^MR||Testperson^Alex||19800101|F\r' +
  'OBR|1||ACC-88123|2823-3^Potassium^LN|||202601150847\r' +
  'OBX|1|NM|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN||5.40|mmol/L^mmol/L^UCUM|3.5-5.10|H|||F|||202601150847\r';

/** The resolved content of the mapping config that mapped it (what mapping_config stores, what /admin/mappings shows). */
const MAPPING_CONFIG = {
  name: 'lab-east',
  description: 'Laboratory results from LAB-EAST at General Hospital',
  match: { sendingApplication: ['LAB-EAST'], sendingFacility: ['GENERAL-HOSP'] },
  timeZone: 'Asia/Seoul',
  identifierSystems: { 'GENERAL-HOSP': 'urn:oid:1.2.410.200000.1.1' },
  localCodeSystemBase: 'urn:anchorline:general-hosp:code',
};

/** The AuditEvent of a read (no source message): its leaf names SHA-256 of no bytes for raw message and mapping. */
const AUDIT_EVENT = {
  resourceType: 'AuditEvent',
  id: 'audit-7c41d2e9',
  meta: { versionId: '1', lastUpdated: '2026-01-15T09:02:00.000Z' },
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
  subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read', display: 'read' }],
  action: 'R',
  recorded: '2026-01-15T09:02:00.000Z',
  outcome: '0',
  agent: [{ who: { display: 'api-key:ward-7-viewer' }, requestor: true }],
  source: { observer: { display: 'anchorline' } },
  entity: [{ what: { reference: 'Observation/obs-3f9a1c07/_history/1' }, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' } }],
};

/** Salt of leaf `index`: the first 16 bytes of SHA-256 of a label, as unpadded base64url. */
function saltOf(index: number): string {
  return bytesToBase64Url(label(`salt ${index}`).slice(0, 16));
}

/** The preimage of leaf `index`: the two featured records, and made-up siblings around them. */
function preimageOf(index: number): LeafPreimage {
  if (index === FEATURED_LEAF) {
    return {
      v: 1,
      resourceType: 'Observation',
      id: 'obs-3f9a1c07',
      versionId: '1',
      resourceSha256: resourceSha256(parseStrictJson(RESOURCE_TEXT)),
      rawSha256: sha256Hex(utf8.encode(RAW_MESSAGE)),
      mappingSha256: sha256Hex(canonicalBytes(MAPPING_CONFIG)),
      terminologyVersion: 'none',
      salt: saltOf(index),
    };
  }
  if (index === NO_SOURCE_LEAF) {
    return {
      v: 1,
      resourceType: 'AuditEvent',
      id: AUDIT_EVENT.id,
      versionId: '1',
      resourceSha256: resourceSha256(AUDIT_EVENT),
      rawSha256: NO_SOURCE_SHA256,
      mappingSha256: NO_SOURCE_SHA256,
      terminologyVersion: 'none',
      salt: saltOf(index),
    };
  }
  const resourceType = ['Patient', 'Observation', 'Encounter'][index % 3]!;
  const resource = { resourceType, id: `made-up-${index}`, meta: { versionId: String(1 + (index % 2)) } };
  return {
    v: 1,
    resourceType,
    id: resource.id,
    versionId: resource.meta.versionId,
    resourceSha256: resourceSha256(resource),
    rawSha256: sha256Hex(utf8.encode(`MSH|^~\\&|MADE-UP|HOSP|ANCHORLINE|HOSP|20260115080000||ADT^A08|MSG${index}|P|2.5.1\r`)),
    mappingSha256: sha256Hex(canonicalBytes(MAPPING_CONFIG)),
    terminologyVersion: 'none',
    salt: saltOf(index),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The log

interface Log {
  store: MemoryNodeStore;
  preimages: LeafPreimage[];
  /** Checkpoint texts and notes, by checkpoint number - 1. */
  texts: string[];
  /** Log signature only. */
  notes: string[];
  /** Log signature and the witness's cosignature, as the engine serves a checkpoint once the witness has cosigned. */
  cosigned: string[];
}

async function buildLog(): Promise<Log> {
  const store = new MemoryNodeStore();
  const preimages = Array.from({ length: LOG_SIZE }, (_, i) => preimageOf(i));
  let frontier = Frontier.empty();
  const texts: string[] = [];
  const notes: string[] = [];
  const cosigned: string[] = [];
  for (const [n, size] of CHECKPOINT_SIZES.entries()) {
    frontier = await appendLeafHashes(store, frontier, preimages.slice(frontier.size, size).map(provenanceLeafHash));
    const checkpoint: LogCheckpoint = {
      origin: ORIGIN,
      size,
      rootHash: frontier.root(),
      time: CHECKPOINT_TIMES[n]!,
      ...(n === 0 ? {} : { previous: checkpointHash(texts[n - 1]!) }),
    };
    const note = signLogCheckpoint(checkpoint, logSigner);
    texts.push(formatLogCheckpoint(checkpoint));
    notes.push(note);
    cosigned.push(note + cosignatureLine(texts[n]!, witness));
  }
  return { store, preimages, texts, notes, cosigned };
}

/** The signature line `signer` adds to a note of `text`. */
function cosignatureLine(text: string, signer: NoteSigner): string {
  return formatSignatureLine({ name: signer.name, keyId: signer.keyId, signature: signer.sign(utf8.encode(text)) });
}

async function bundleAt(log: Log, index: number, checkpointNumber: number, note: string, anchor: LogProofBundle['anchor'] = { driver: 'local' }): Promise<LogProofBundle> {
  const size = CHECKPOINT_SIZES[checkpointNumber - 1]!;
  const proof = await inclusionProof(log.store, index, size);
  return {
    format: 'anchorline-proof/2',
    leaf: { preimage: { ...log.preimages[index]! }, index },
    inclusionProof: proof.map(bytesToBase64),
    checkpoint: note,
    logKey: LOG_KEY,
    anchor,
  };
}

async function consistencyDoc(log: Log, oldNumber: number, newNumber: number): Promise<ConsistencyDocument> {
  const proof = await consistencyProof(log.store, CHECKPOINT_SIZES[oldNumber - 1]!, CHECKPOINT_SIZES[newNumber - 1]!);
  return { format: 'anchorline-consistency/1', logKey: LOG_KEY, old: log.cosigned[oldNumber - 1]!, new: log.cosigned[newNumber - 1]!, proof: proof.map(bytesToBase64) };
}

/** The claim that checkpoint `number` was anchored on a made-up Besu chain. */
function claimFor(log: Log, number: number, overrides: Partial<AnchorClaim> = {}): AnchorClaim {
  return {
    origin: ORIGIN,
    checkpointNumber: number,
    treeSize: CHECKPOINT_SIZES[number - 1]!,
    checkpointHash: checkpointHash(log.texts[number - 1]!),
    chainId: 1337,
    contract: `0x${bytesToHex(label('registry address').slice(0, 20))}`,
    txHash: `0x${bytesToHex(label(`transaction of checkpoint ${number}`))}`,
    blockNumber: 4711 + number,
    blockHash: `0x${bytesToHex(label(`block of checkpoint ${number}`))}`,
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Small tamperings, each changing one thing and keeping everything else well formed

/** Canonical padded base64 of 32 bytes with the lowest bit of byte `index` flipped. */
function flipBase64Hash(text: string, index: number): string {
  const bytes = base64ToBytes(text);
  bytes[index]! ^= 1;
  return bytesToBase64(bytes);
}

/** A lowercase hex hash with its first digit's lowest bit flipped. */
function flipHex(hex: string): string {
  return (parseInt(hex[0]!, 16) ^ 1).toString(16) + hex.slice(1);
}

/** Unpadded base64url of 16 bytes with the lowest bit of the first byte flipped. */
function flipSalt(salt: string): string {
  const bytes = base64ToBytes(`${salt.replaceAll('-', '+').replaceAll('_', '/')}==`);
  bytes[0]! ^= 1;
  return bytesToBase64Url(bytes);
}

/** `text` with `from` replaced by `to`, where `from` must occur exactly once. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`expected exactly one ${JSON.stringify(from)}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** A note's text part (up to and including the blank line's first newline) and its signature lines. */
function splitNote(note: string): { text: string; lines: string[] } {
  const parsed = parseNote(note);
  if (!parsed.ok) throw new Error(parsed.reason);
  return { text: parsed.value.text, lines: parsed.value.signatures.map(formatSignatureLine) };
}

function joinNote(text: string, lines: readonly string[]): string {
  return `${text}\n${lines.join('')}`;
}

/** The note with its first signature line's decoded byte `index` (counted after the key ID) flipped. */
function flipSignatureByte(note: string, line: number, index: number): string {
  const parsed = parseNote(note);
  if (!parsed.ok) throw new Error(parsed.reason);
  const signatures = parsed.value.signatures.map((s, i) => {
    if (i !== line) return s;
    const signature = s.signature.slice();
    signature[index]! ^= 1;
    return { ...s, signature };
  });
  return joinNote(parsed.value.text, signatures.map(formatSignatureLine));
}

// ---------------------------------------------------------------------------------------------------------------
// Ed25519 edge cases, signed by hand (RFC 8032 §5.1.6 with a chosen key encoding, nonce or R)

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
/** A point of order 8 (C2SP CCTV's low-order points; also in test/anchor/ed25519.test.ts). */
const ORDER_8_POINT = '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05';
/** The identity (0, 1), a point of order 1: [k]A is the identity for every k. */
const IDENTITY_POINT = '01' + '00'.repeat(31);

function littleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

function littleEndian32(value: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** k = SHA-512(R || A || M) mod L. */
function challenge(encodedR: Uint8Array, publicKey: Uint8Array, message: Uint8Array): bigint {
  return littleEndian(sha512(new Uint8Array([...encodedR, ...publicKey, ...message]))) % L;
}

/** A signer under an arbitrary public key encoding and R: S = r + k * scalar mod L, with R given or [r]B. */
function handSigner(name: string, publicKey: Uint8Array, scalar: bigint, r: bigint, encodedR?: Uint8Array): NoteSigner {
  return {
    name,
    keyId: noteKeyId(name, SIGNATURE_TYPE_ED25519, publicKey),
    sign(text: Uint8Array): Uint8Array {
      const rBytes = encodedR ?? Point.BASE.multiply(r).toBytes();
      const s = (r + challenge(rBytes, publicKey, text) * scalar) % L;
      return new Uint8Array([...rBytes, ...littleEndian32(s)]);
    },
  };
}

const nonce = littleEndian(TORSION_NONCE_SEED) % L;
const logScalar = ed25519.utils.getExtendedPublicKey(LOG_SEED).scalar;

/** The log's key with a torsion component: A' = [a]B + T, T of order 8. */
const torsionKey = Point.BASE.multiply(logScalar).add(Point.fromHex(ORDER_8_POINT)).toBytes();
/**
 * Signs like the log, under A': S = r + k * a. Then [S]B = R + [k]A' - [k]T, so the cofactorless equation fails
 * unless 8 divides k, and the cofactored one holds.
 */
const torsionSigner = handSigner(ORIGIN, torsionKey, logScalar, nonce);
/** A small-order R and S = k * a: [S]B = [k]A, so only the cofactored equation (which multiplies R away) holds. */
const smallOrderRSigner = handSigner(ORIGIN, ed25519.getPublicKey(LOG_SEED), logScalar, 0n, Point.fromHex(ORDER_8_POINT).toBytes());
/** The identity as the key, R = [r]B and S = r: both equations hold for this signature over any message at all. */
const identityKeySigner = handSigner(ORIGIN, hexBytes(IDENTITY_POINT), 0n, nonce);

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((byte) => parseInt(byte, 16)));
}

// ---------------------------------------------------------------------------------------------------------------
// The corpus

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** Every file of the corpus but this generator, by name. */
export async function corpusFiles(): Promise<Map<string, Uint8Array>> {
  const log = await buildLog();
  const files = new Map<string, Uint8Array>();
  const cases: CorpusCase[] = [];
  const put = (name: string, content: string | Uint8Array): void => {
    if (files.has(name)) throw new Error(`${name} written twice`);
    files.set(name, typeof content === 'string' ? utf8.encode(content) : content);
  };

  // Inputs.
  const inputs: Record<string, string> = {
    'resource.json': `The Observation of leaf ${FEATURED_LEAF} as GET /fhir/Observation/obs-3f9a1c07/_history/1 serves it; its decimals 5.40 and 5.10 are hashed as written.`,
    'resource-decimal-rewritten.json': 'resource.json with 5.40 written 5.4, as a reader that goes through IEEE 754 doubles (JSON.parse) would write it back: another resource.',
    'resource-reformatted.json': 'resource.json with its members reordered and its whitespace changed: the same resource, the same canonical bytes.',
    'message.hl7': `The HL7 v2 message leaf ${FEATURED_LEAF} was mapped from, as received: the MLLP frame's payload, segments ending in CR (0x0D).`,
    'message-mllp-framed.bin': 'message.hl7 with its MLLP framing (0x0B before, 0x1C 0x0D after): not the bytes rawSha256 names.',
    'mapping-config.json': 'The resolved mapping config the leaves name: SHA-256 of its canonical JSON is their mappingSha256.',
    'audit-event.json': `The AuditEvent of a read (leaf ${NO_SOURCE_LEAF}): no source message and no mapping, so rawSha256 and mappingSha256 are SHA-256 of no bytes.`,
    'empty.bin': 'No bytes: the raw message of a record that has none.',
    'vectors.json': 'The worked examples docs/proofs.md quotes: leaf bytes and hash, canonical resource bytes, key ID, checkpoint texts (one with a legacy line), signature and cosignature lines, anchor claim.',
  };
  put('resource.json', RESOURCE_TEXT);
  put('resource-decimal-rewritten.json', replaceOnce(RESOURCE_TEXT, '"value": 5.40,', '"value": 5.4,'));
  put('resource-reformatted.json', reformatted(RESOURCE_TEXT));
  put('message.hl7', RAW_MESSAGE);
  put('message-mllp-framed.bin', new Uint8Array([0x0b, ...utf8.encode(RAW_MESSAGE), 0x1c, 0x0d]));
  put('mapping-config.json', json(MAPPING_CONFIG));
  put('audit-event.json', json(AUDIT_EVENT));
  put('empty.bin', new Uint8Array(0));

  const good = await bundleAt(log, FEATURED_LEAF, 3, log.cosigned[2]!);
  const full = { resource: 'resource.json', raw: 'message.hl7', logKey: LOG_KEY, witnesses: [WITNESS_KEY], witnessesRequired: 1 };
  const addBundle = (name: string, bundle: LogProofBundle | string, changed: string, options: CaseOptions, failed: string[], extra: Partial<CorpusCase> = {}): void => {
    const file = `${name}.json`;
    put(file, typeof bundle === 'string' ? bundle : json(bundle));
    cases.push({ name, kind: 'bundle', file, changed, options, failed, ...extra });
  };
  const tampered = (mutate: (b: LogProofBundle) => void): LogProofBundle => {
    const copy = structuredClone(good);
    mutate(copy);
    return copy;
  };
  const NOT_CHECKED = ['bundle-format', 'leaf-hash', 'checkpoint', 'inclusion', 'anchor'];

  // Genuine bundles.
  addBundle('bundle-good', good, `nothing: leaf ${FEATURED_LEAF} against checkpoint 3 (300 leaves), cosigned by the witness, as GET /proofs/Observation/obs-3f9a1c07/_history/1 serves it`, {}, []);
  cases.push({ name: 'bundle-good-all-inputs', kind: 'bundle', file: 'bundle-good.json', changed: 'nothing; the resource, the raw message, the pinned log key and the witness (1 of 1) are all given', options: full, failed: [] });
  cases.push({ name: 'bundle-good-resource-reformatted', kind: 'bundle', file: 'bundle-good.json', changed: 'nothing; the resource given is written with other whitespace and member order', options: { resource: 'resource-reformatted.json' }, failed: [] });
  cases.push({ name: 'bundle-good-resource-decimal-rewritten', kind: 'bundle', file: 'bundle-good.json', changed: 'the resource given has 5.4 where the stored one has 5.40', options: { resource: 'resource-decimal-rewritten.json' }, failed: ['resource-hash'] });
  cases.push({ name: 'bundle-good-raw-with-framing', kind: 'bundle', file: 'bundle-good.json', changed: 'the raw message given still has its MLLP framing bytes', options: { raw: 'message-mllp-framed.bin' }, failed: ['raw-hash'] });
  cases.push({ name: 'bundle-good-raw-other-message', kind: 'bundle', file: 'bundle-good.json', changed: 'the raw message given is empty (no bytes)', options: { raw: 'empty.bin' }, failed: ['raw-hash'] });
  addBundle('bundle-no-source', await bundleAt(log, NO_SOURCE_LEAF, 3, log.cosigned[2]!), `nothing: leaf ${NO_SOURCE_LEAF}, the AuditEvent of a read, whose rawSha256 and mappingSha256 are SHA-256 of no bytes`, { resource: 'audit-event.json', raw: 'empty.bin', logKey: LOG_KEY }, []);
  addBundle('bundle-plain-checkpoint', await bundleAt(log, FEATURED_LEAF, 3, log.notes[2]!), 'nothing: checkpoint 3 carries the log signature only, before any witness cosigned it', { logKey: LOG_KEY }, []);
  const claim = signAnchorClaim(claimFor(log, 3), logSigner);
  const evm = await bundleAt(log, FEATURED_LEAF, 3, log.cosigned[2]!, { driver: 'evm', claim });
  addBundle('bundle-evm', evm, 'nothing: the evm driver anchored checkpoint 3; the bundle carries the claim the log key signed', { logKey: LOG_KEY, witnesses: [WITNESS_KEY] }, []);

  // The preimage.
  const preimage = good.leaf.preimage;
  addBundle('preimage-resource-sha256', tampered((b) => void (b.leaf.preimage.resourceSha256 = flipHex(preimage.resourceSha256))), 'leaf.preimage.resourceSha256: one hex digit', { resource: 'resource.json' }, ['resource-hash', 'inclusion']);
  addBundle('preimage-raw-sha256', tampered((b) => void (b.leaf.preimage.rawSha256 = flipHex(preimage.rawSha256))), 'leaf.preimage.rawSha256: one hex digit', { raw: 'message.hl7' }, ['raw-hash', 'inclusion']);
  addBundle('preimage-mapping-sha256', tampered((b) => void (b.leaf.preimage.mappingSha256 = flipHex(preimage.mappingSha256))), 'leaf.preimage.mappingSha256: one hex digit', {}, ['inclusion']);
  addBundle('preimage-salt', tampered((b) => void (b.leaf.preimage.salt = flipSalt(preimage.salt))), 'leaf.preimage.salt: one bit of its first byte', {}, ['inclusion']);
  addBundle('preimage-id', tampered((b) => void (b.leaf.preimage.id = 'obs-3f9a1c08')), 'leaf.preimage.id: another resource id', { resource: 'resource.json' }, ['resource-hash', 'inclusion']);
  addBundle('preimage-version-id', tampered((b) => void (b.leaf.preimage.versionId = '2')), 'leaf.preimage.versionId: "2" for "1"', { resource: 'resource.json' }, ['resource-hash', 'inclusion']);
  addBundle('preimage-resource-type', tampered((b) => void (b.leaf.preimage.resourceType = 'Condition')), 'leaf.preimage.resourceType: Condition for Observation', {}, ['inclusion']);
  addBundle('preimage-terminology-version', tampered((b) => void (b.leaf.preimage.terminologyVersion = 'sha256:' + '0'.repeat(64))), 'leaf.preimage.terminologyVersion: a terminology version for "none"', {}, ['inclusion']);
  addBundle('preimage-v', tampered((b) => void ((b.leaf.preimage as { v: number }).v = 2)), 'leaf.preimage.v: 2, a preimage version this format does not define', {}, NOT_CHECKED);
  addBundle('preimage-extra-member', tampered((b) => void ((b.leaf.preimage as unknown as Record<string, unknown>).note = 'x')), 'leaf.preimage: one member more than the format has', {}, NOT_CHECKED);

  // The leaf index.
  addBundle('index-neighbour', tampered((b) => void (b.leaf.index = FEATURED_LEAF - 1)), `leaf.index: ${FEATURED_LEAF - 1}, the neighbouring leaf`, {}, ['inclusion']);
  addBundle('index-tree-size', tampered((b) => void (b.leaf.index = LOG_SIZE)), `leaf.index: ${LOG_SIZE}, the checkpoint's size, no leaf of it`, {}, ['inclusion']);
  addBundle('index-written-1.0', replaceOnce(json(good), `"index": ${FEATURED_LEAF}\n`, `"index": ${FEATURED_LEAF}.0\n`), `leaf.index written ${FEATURED_LEAF}.0: a number, but not an integer as the format writes one`, {}, NOT_CHECKED);
  addBundle('index-negative', tampered((b) => void (b.leaf.index = -1)), 'leaf.index: -1', {}, NOT_CHECKED);

  // The inclusion proof.
  for (let i = 0; i < good.inclusionProof.length; i++) {
    addBundle(`inclusion-hash-${i}`, tampered((b) => void (b.inclusionProof[i] = flipBase64Hash(b.inclusionProof[i]!, 31))), `inclusionProof[${i}]: one bit of its last byte`, {}, ['inclusion']);
  }
  addBundle('inclusion-hash-removed', tampered((b) => void b.inclusionProof.pop()), 'inclusionProof: its last hash removed', {}, ['inclusion']);
  addBundle('inclusion-hash-added', tampered((b) => void b.inclusionProof.push(b.inclusionProof[b.inclusionProof.length - 1]!)), 'inclusionProof: its last hash repeated at the end', {}, ['inclusion']);
  addBundle('inclusion-hash-unpadded', tampered((b) => void (b.inclusionProof[0] = b.inclusionProof[0]!.slice(0, -1))), 'inclusionProof[0]: its "=" padding removed', {}, NOT_CHECKED);

  // The checkpoint text (the log's signature left as it was).
  const { text: goodText, lines: goodLines } = splitNote(good.checkpoint);
  const withText = (text: string): string => joinNote(text, goodLines);
  const textLines = goodText.split('\n');
  addBundle('checkpoint-size', tampered((b) => void (b.checkpoint = withText(replaceOnce(goodText, `\n${LOG_SIZE}\n`, `\n${LOG_SIZE + 1}\n`)))), 'checkpoint text: the size line, 301 for 300', {}, ['checkpoint', 'inclusion']);
  addBundle('checkpoint-root', tampered((b) => void (b.checkpoint = withText(replaceOnce(goodText, textLines[2]!, flipBase64Hash(textLines[2]!, 0))))), 'checkpoint text: the root hash, one bit of its first byte', {}, ['checkpoint', 'inclusion']);
  addBundle('checkpoint-time', tampered((b) => void (b.checkpoint = withText(replaceOnce(goodText, '09:10:00.000Z', '09:10:01.000Z')))), 'checkpoint text: the time line, one second later', {}, ['checkpoint', 'inclusion']);
  const previousLine = textLines[4]!;
  addBundle('checkpoint-previous', tampered((b) => void (b.checkpoint = withText(replaceOnce(goodText, previousLine, `previous ${flipBase64Hash(previousLine.slice(9), 0)}`)))), 'checkpoint text: the previous line, one bit of its first byte', {}, ['checkpoint', 'inclusion']);

  // Correctly signed checkpoints outside anchorline's grammar.
  const signedText = (text: string, signers: NoteSigner[] = [logSigner]): string => signNote(text, signers);
  addBundle('checkpoint-unknown-extension', tampered((b) => void (b.checkpoint = signedText(`${goodText}note made up\n`))), 'checkpoint: re-signed by the log key with an extension line anchorline does not define', {}, ['checkpoint', 'inclusion']);
  addBundle('checkpoint-no-time', tampered((b) => void (b.checkpoint = signedText(textLines.slice(0, 3).concat(textLines[4]!, '').join('\n')))), 'checkpoint: re-signed by the log key without its time line', {}, ['checkpoint', 'inclusion']);
  const legacyLine = `legacy ${bytesToHex(label('header hash of the last batch'))}\n`;
  addBundle('checkpoint-legacy-after-previous', tampered((b) => void (b.checkpoint = signedText(`${goodText}${legacyLine}`))), 'checkpoint: re-signed by the log key with a legacy line after its previous line; legacy is only on a first checkpoint', {}, ['checkpoint', 'inclusion']);
  const migrated = await migratedLog(log, legacyLine);
  addBundle('bundle-migrated-log', migrated.bundle, `nothing: leaf ${MIGRATED_LEAF} of a log that began as anchorline-proof/1 batches 1 to 3, against its first checkpoint (number 4), whose legacy line names the last batch header`, { logKey: MIGRATED_LOG_KEY }, []);
  addBundle('checkpoint-other-origin', tampered((b) => void (b.checkpoint = signedText(replaceOnce(goodText, `${ORIGIN}\n`, `${OTHER_ORIGIN}\n`)))), 'checkpoint: re-signed by the log key, with another origin line than the key name', {}, ['checkpoint', 'inclusion']);

  // The log's signature.
  addBundle('signature-byte', tampered((b) => void (b.checkpoint = flipSignatureByte(b.checkpoint, 0, 40))), 'checkpoint: one bit of the log signature (a byte of S)', {}, ['checkpoint', 'inclusion']);
  addBundle('signature-other-key-same-name', tampered((b) => void (b.checkpoint = joinNote(goodText, [cosignatureLine(goodText, impostorSigner), goodLines[1]!]))), `checkpoint: the log signature replaced by one of another key named ${ORIGIN} (another key ID); logKey unchanged`, {}, ['checkpoint', 'inclusion']);
  addBundle('signature-key-id', tampered((b) => {
    const parsed = parseNote(b.checkpoint);
    if (!parsed.ok) throw new Error(parsed.reason);
    const [log, ...rest] = parsed.value.signatures;
    b.checkpoint = joinNote(parsed.value.text, [{ ...log!, keyId: (log!.keyId ^ 1) >>> 0 }, ...rest].map(formatSignatureLine));
  }), 'checkpoint: the key ID in the log signature line, lowest bit flipped; the signature bytes unchanged', {}, ['checkpoint', 'inclusion']);
  addBundle('signature-repeated', tampered((b) => void (b.checkpoint = joinNote(goodText, [goodLines[0]!, goodLines[0]!, goodLines[1]!]))), 'checkpoint: the log signature line written twice, identical: it counts once', { logKey: LOG_KEY }, []);
  addBundle('signature-second-invalid', tampered((b) => {
    const second = splitNote(flipSignatureByte(joinNote(goodText, [goodLines[0]!]), 0, 40)).lines[0]!;
    b.checkpoint = joinNote(goodText, [goodLines[0]!, second, goodLines[1]!]);
  }), 'checkpoint: a second, different log signature line that does not verify after the valid one', {}, ['checkpoint', 'inclusion']);
  addBundle('log-key-id-mismatch', tampered((b) => void (b.logKey = LOG_KEY.replace(/\+([0-9a-f]{8})\+/, (_m, id: string) => `+${(parseInt(id, 16) ^ 1).toString(16).padStart(8, '0')}+`))), "logKey: the key ID part, lowest bit flipped, so it is not the key's", { logKey: LOG_KEY }, ['checkpoint', 'inclusion', 'log-key']);
  addBundle('log-key-not-pinned', tampered((b) => {
    b.checkpoint = joinNote(goodText, [cosignatureLine(goodText, impostorSigner), goodLines[1]!]);
    b.logKey = IMPOSTOR_KEY;
  }), `checkpoint re-signed by another key named ${ORIGIN}, and logKey that key: consistent in itself, but not the pinned key`, { logKey: LOG_KEY }, ['log-key']);

  // Ed25519 edge cases on the checkpoint signature.
  const handSigned = (signer: NoteSigner, publicKey: Uint8Array): { bundle: LogProofBundle; equations: CorpusCase['equations'] } => {
    const signatureLine = cosignatureLine(goodText, signer);
    const bundle = tampered((b) => {
      b.checkpoint = joinNote(goodText, [signatureLine, goodLines[1]!]);
      b.logKey = formatVerifierKey(ORIGIN, SIGNATURE_TYPE_ED25519, publicKey);
    });
    return { bundle, equations: equations(base64ToBytes(signatureLine.slice(signatureLine.lastIndexOf(' ') + 1, -1)).slice(4), utf8.encode(goodText), publicKey) };
  };
  const torsion = handSigned(torsionSigner, torsionKey);
  if (torsion.equations!.cofactorless) throw new Error('the torsion case needs k not divisible by 8; change the nonce label');
  addBundle('ed25519-torsion-key', torsion.bundle, 'logKey: the log key plus a point of order 8, and the checkpoint signed for it with the log scalar; k is not a multiple of 8, so only a cofactored verifier accepts', { logKey: torsion.bundle.logKey }, ['checkpoint', 'inclusion'], { equations: torsion.equations });
  const smallR = handSigned(smallOrderRSigner, ed25519.getPublicKey(LOG_SEED));
  addBundle('ed25519-small-order-r', smallR.bundle, 'checkpoint: the log signature remade with R a point of order 8 and S = k * a; only a cofactored verifier accepts', { logKey: LOG_KEY }, ['checkpoint', 'inclusion'], { equations: smallR.equations });
  const identity = handSigned(identityKeySigner, hexBytes(IDENTITY_POINT));
  addBundle('ed25519-small-order-key', identity.bundle, 'logKey: the identity point (order 1), and a signature (R = [r]B, S = r) that both equations accept for every message: anchorline refuses small-order keys for that reason', { logKey: identity.bundle.logKey }, ['checkpoint', 'inclusion'], { equations: identity.equations });

  // Cosignatures.
  addBundle('cosignature-missing', await bundleAt(log, FEATURED_LEAF, 3, log.notes[2]!), 'checkpoint: no cosignature, and the auditor requires 1 of 1 witness', { witnesses: [WITNESS_KEY], witnessesRequired: 1 }, ['cosignatures']);
  addBundle('cosignature-unknown-witness', tampered((b) => void (b.checkpoint = joinNote(goodText, [goodLines[0]!, cosignatureLine(goodText, unknownWitness)]))), `checkpoint: cosigned by ${UNKNOWN_WITNESS_NAME}, a witness the auditor does not trust, instead of ${WITNESS_NAME}`, { witnesses: [WITNESS_KEY], witnessesRequired: 1 }, ['cosignatures']);
  addBundle('cosignature-byte', tampered((b) => void (b.checkpoint = flipSignatureByte(b.checkpoint, 1, 40))), "checkpoint: one bit of the witness's Ed25519 signature; a signature by a trusted key that fails refuses the whole note", { witnesses: [WITNESS_KEY], witnessesRequired: 1 }, ['checkpoint', 'inclusion', 'cosignatures']);
  addBundle('cosignature-timestamp', tampered((b) => void (b.checkpoint = flipSignatureByte(b.checkpoint, 1, 7))), "checkpoint: the witness's timestamp one second off (the lowest bit of its last byte); the timestamp is signed", { witnesses: [WITNESS_KEY], witnessesRequired: 1 }, ['checkpoint', 'inclusion', 'cosignatures']);
  cases.push({ name: 'cosignature-not-required', kind: 'bundle', file: 'cosignature-unknown-witness.json', changed: 'as cosignature-unknown-witness, but the auditor gives no witness keys: an unknown cosignature is set aside, not verified', options: { logKey: LOG_KEY }, failed: [] });

  // The anchor claim.
  const withClaim = (note: string): LogProofBundle => ({ ...structuredClone(evm), anchor: { driver: 'evm', claim: note } });
  addBundle('claim-other-key', withClaim(signAnchorClaim(claimFor(log, 3), impostorSigner)), `anchor.claim: the same claim signed by another key named ${ORIGIN}`, { logKey: LOG_KEY }, ['anchor']);
  addBundle('claim-other-checkpoint-hash', withClaim(signAnchorClaim(claimFor(log, 3, { checkpointHash: checkpointHash(replaceOnce(log.texts[2]!, CHECKPOINT_TIMES[2], '2026-01-15T09:10:30.000Z')) }), logSigner)), 'anchor.claim: signed by the log key, but naming the hash of another 300-leaf checkpoint text (a fork)', { logKey: LOG_KEY }, ['anchor']);
  addBundle('claim-other-tree-size', withClaim(signAnchorClaim(claimFor(log, 2), logSigner)), "anchor.claim: the log key's genuine claim for checkpoint 2 (217 leaves), not the bundle's checkpoint", { logKey: LOG_KEY }, ['anchor']);
  const claimText = formatAnchorClaim(claimFor(log, 3));
  addBundle('claim-text-edited', withClaim(replaceOnce(claim, `block ${4711 + 3} `, `block ${4711 + 4} `)), 'anchor.claim: the block number edited after signing', { logKey: LOG_KEY }, ['anchor']);
  addBundle('claim-other-origin', withClaim(signNote(replaceOnce(claimText, `\n${ORIGIN}\n`, `\n${OTHER_ORIGIN}\n`), [logSigner])), 'anchor.claim: signed by the log key, but naming another origin', { logKey: LOG_KEY }, ['anchor']);
  addBundle('claim-missing', tampered((b) => void (b.anchor = { driver: 'evm' } as LogProofBundle['anchor'])), 'anchor: driver evm without a claim', {}, NOT_CHECKED);

  // Texts the strict reader refuses.
  const goodJson = json(good);
  const readError = (name: string, text: string, changed: string, rule: CorpusCase['readError']): void => {
    const file = `${name}.json`;
    put(file, text);
    cases.push({ name, kind: 'bundle', file, changed, options: {}, readError: rule });
  };
  readError('json-duplicate-salt', replaceOnce(goodJson, `"salt": "${preimage.salt}"`, `"salt": "${flipSalt(preimage.salt)}",\n      "salt": "${preimage.salt}"`), 'leaf.preimage.salt written twice, another salt first: JSON.parse keeps the last and would verify, other readers keep the first', 'duplicate-member');
  readError('json-duplicate-format', replaceOnce(goodJson, '"format": "anchorline-proof/2",', '"format": "anchorline-proof/2",\n  "format": "anchorline-proof/2",'), 'format written twice with the same value: refused all the same', 'duplicate-member');
  readError('json-lone-surrogate', replaceOnce(goodJson, '"id": "obs-3f9a1c07"', '"id": "obs-3f9a1c07\\ud800"'), 'leaf.preimage.id ends in the escape \\ud800, a lone surrogate: no UTF-8 form, nothing to hash', 'lone-surrogate');
  readError('json-trailing-comma', replaceOnce(goodJson, '"driver": "local"\n', '"driver": "local",\n'), 'a trailing comma after anchor.driver', 'syntax');

  // Consistency documents.
  const addDoc = (name: string, doc: ConsistencyDocument, changed: string, options: CaseOptions, failed: string[]): void => {
    const file = `${name}.json`;
    put(file, json(doc));
    cases.push({ name, kind: 'consistency', file, changed, options, failed });
  };
  const doc23 = await consistencyDoc(log, 2, 3);
  addDoc('consistency-good', doc23, 'nothing: checkpoint 2 (217 leaves) to checkpoint 3 (300), both cosigned, as GET /log/consistency?old=217&new=300 serves it', { logKey: LOG_KEY, witnesses: [WITNESS_KEY], witnessesRequired: 1 }, []);
  addDoc('consistency-from-first', await consistencyDoc(log, 1, 3), 'nothing: checkpoint 1 (100 leaves) to checkpoint 3 (300)', { logKey: LOG_KEY }, []);
  for (let i = 0; i < doc23.proof.length; i++) {
    addDoc(`consistency-proof-hash-${i}`, { ...doc23, proof: doc23.proof.map((h, j) => (j === i ? flipBase64Hash(h, 31) : h)) }, `proof[${i}]: one bit of its last byte`, { logKey: LOG_KEY }, ['consistency']);
  }
  addDoc('consistency-proof-hash-removed', { ...doc23, proof: doc23.proof.slice(0, -1) }, 'proof: its last hash removed', { logKey: LOG_KEY }, ['consistency']);
  const otherLog = signLogCheckpoint({ origin: OTHER_ORIGIN, size: 217, rootHash: rootAt(log, 2), time: CHECKPOINT_TIMES[1] }, otherLogSigner);
  addDoc('consistency-old-other-log', { ...doc23, old: otherLog }, `old: a checkpoint of the same size and root signed by another log (${OTHER_ORIGIN}, its own key)`, { logKey: LOG_KEY }, ['old-checkpoint', 'consistency']);
  addDoc('consistency-sizes-swapped', { ...doc23, old: doc23.new, new: doc23.old }, 'old and new swapped: the newer checkpoint given as the older', { logKey: LOG_KEY }, ['consistency']);
  const fork = await forkedCheckpoint(log);
  addDoc('consistency-fork', { ...doc23, old: fork }, 'old: a 217-leaf checkpoint the log key signed over a different leaf 200 (a split view); no proof can join it to checkpoint 3', { logKey: LOG_KEY }, ['consistency']);
  addDoc('consistency-other-log-key', { ...doc23, logKey: IMPOSTOR_KEY }, `logKey: another key named ${ORIGIN}; neither checkpoint is signed by it`, { logKey: LOG_KEY }, ['old-checkpoint', 'new-checkpoint', 'consistency', 'log-key']);
  addDoc('consistency-new-uncosigned', { ...doc23, new: log.notes[2]! }, 'new: checkpoint 3 with the log signature only, and the auditor requires 1 of 1 witness', { witnesses: [WITNESS_KEY], witnessesRequired: 1 }, ['cosignatures']);

  // Bringing a bundle forward.
  addBundle('bundle-at-217', await bundleAt(log, FEATURED_LEAF, 2, log.cosigned[1]!), `nothing: leaf ${FEATURED_LEAF} against checkpoint 2 (217 leaves)`, { logKey: LOG_KEY }, []);
  cases.push({ name: 'forward-good', kind: 'forward', file: 'bundle-at-217.json', consistency: 'consistency-good.json', changed: 'nothing: the bundle at 217 leaves and the consistency document from 217 to 300 put the leaf in checkpoint 3', options: { logKey: LOG_KEY, witnesses: [WITNESS_KEY], witnessesRequired: 1 }, failed: [] });
  cases.push({ name: 'forward-other-old-checkpoint', kind: 'forward', file: 'bundle-at-217.json', consistency: 'consistency-from-first.json', changed: "the consistency document starts at checkpoint 1 (100 leaves), not at the bundle's checkpoint 2", options: { logKey: LOG_KEY }, failed: ['forward'] });
  cases.push({ name: 'forward-bundle-tampered', kind: 'forward', file: 'preimage-salt.json', consistency: 'consistency-good.json', changed: 'the bundle fails (its salt changed), so nothing is brought forward', options: { logKey: LOG_KEY }, failed: ['inclusion', 'forward'] });

  // Worked examples for docs/proofs.md.
  put('vectors.json', json(vectors(log, good, claimText, migrated.text)));
  put('manifest.json', json({ description: MANIFEST_DESCRIPTION, inputs, cases } satisfies Manifest));
  return files;
}

const MANIFEST_DESCRIPTION =
  'Genuine and tampered anchorline-proof/2 bundles and anchorline-consistency/1 documents (docs/proofs.md). For each case: read every file as strict ' +
  'JSON (docs/proofs.md, "Reading JSON"); if readError is given, reading must fail by that rule and nothing is verified. Otherwise verify with the ' +
  'options given (kind bundle: the bundle; consistency: the document; forward: the bundle, then the document, then that the document starts at the ' +
  "bundle's checkpoint) and exactly the checks in failed must fail, in that order. Generated by generate.ts; every key here is published and proves nothing.";

/** The leaf the migrated log's bundle proves, and the size of that log's first checkpoint. */
const MIGRATED_LEAF = 5;
const MIGRATED_SIZE = 21;

/**
 * A log that began as batches (three of them, leaves 0 to 20, the first leaves of the corpus log standing in for
 * theirs) and its first checkpoint: no previous line, a legacy line naming the last batch header.
 */
async function migratedLog(log: Log, legacyLine: string): Promise<{ bundle: LogProofBundle; text: string }> {
  const store = new MemoryNodeStore();
  const preimages = log.preimages.slice(0, MIGRATED_SIZE);
  const frontier = await appendLeafHashes(store, Frontier.empty(), preimages.map(provenanceLeafHash));
  const checkpoint: LogCheckpoint = { origin: MIGRATED_ORIGIN, size: MIGRATED_SIZE, rootHash: frontier.root(), time: '2026-01-14T23:00:00.000Z', legacy: legacyLine.slice(7, -1) };
  const note = signLogCheckpoint(checkpoint, migratedLogSigner);
  const proof = await inclusionProof(store, MIGRATED_LEAF, MIGRATED_SIZE);
  return {
    bundle: {
      format: 'anchorline-proof/2',
      leaf: { preimage: { ...preimages[MIGRATED_LEAF]! }, index: MIGRATED_LEAF },
      inclusionProof: proof.map(bytesToBase64),
      checkpoint: note,
      logKey: MIGRATED_LOG_KEY,
      anchor: { driver: 'local' },
    },
    text: formatLogCheckpoint(checkpoint),
  };
}

/** The root of the log at checkpoint `number`, as its text states it. */
function rootAt(log: Log, number: number): Uint8Array {
  return base64ToBytes(log.texts[number - 1]!.split('\n')[2]!);
}

/** A 217-leaf checkpoint that the log key signs over a tree whose leaf 200 differs from the log's. */
async function forkedCheckpoint(log: Log): Promise<string> {
  const store = new MemoryNodeStore();
  const leaves = log.preimages.slice(0, 217).map((p, i) => (i === 200 ? { ...p, salt: flipSalt(p.salt) } : p));
  await appendLeafHashes(store, Frontier.empty(), leaves.map(provenanceLeafHash));
  const root = await treeRoot(store, 217);
  const note = signLogCheckpoint({ origin: ORIGIN, size: 217, rootHash: root, time: '2026-01-15T09:05:30.000Z', previous: checkpointHash(log.texts[0]!) }, logSigner);
  return note + cosignatureLine(splitNote(note).text, witness);
}

/** Whether a 64-byte signature satisfies the cofactorless and the cofactored Ed25519 equation (A and R decoded as given). */
export function equations(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): { cofactorless: boolean; cofactored: boolean } {
  const encodedR = signature.subarray(0, 32);
  const s = littleEndian(signature.subarray(32, 64));
  const a = Point.fromBytes(publicKey, false);
  const r = Point.fromBytes(encodedR, false);
  const k = challenge(encodedR, publicKey, message);
  // multiplyUnsafe: A's scalar may be 0 (the identity key), which multiply refuses.
  const difference = (s === 0n ? Point.ZERO : Point.BASE.multiplyUnsafe(s)).subtract(r).subtract(k === 0n ? Point.ZERO : a.multiplyUnsafe(k));
  return { cofactorless: difference.equals(Point.ZERO), cofactored: difference.multiplyUnsafe(8n).equals(Point.ZERO) };
}

/** resource.json with every object's members in reverse order and no whitespace: the same canonical bytes. */
function reformatted(text: string): string {
  const reverse = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(reverse);
    if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
    const record = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).reverse().map((key) => [key, reverse(record[key])]));
  };
  return `${stringifyJson(reverse(parseStrictJson(text)))}\n`;
}

function vectors(log: Log, good: LogProofBundle, claimText: string, migratedText: string): Record<string, unknown> {
  const preimage = good.leaf.preimage;
  const publicKey = ed25519.getPublicKey(LOG_SEED);
  const keyIdInput = new Uint8Array([...utf8.encode(ORIGIN), 0x0a, SIGNATURE_TYPE_ED25519, ...publicKey]);
  const text = log.texts[2]!;
  const note = splitNote(log.cosigned[2]!);
  return {
    leaf: {
      index: FEATURED_LEAF,
      preimage,
      leafBytes: new TextDecoder().decode(leafBytes(preimage)),
      leafHash: bytesToHex(provenanceLeafHash(preimage)),
    },
    resource: {
      file: 'resource.json',
      canonical: new TextDecoder().decode(canonicalBytes(parseStrictJson(RESOURCE_TEXT))),
      resourceSha256: preimage.resourceSha256,
    },
    rawSha256: { file: 'message.hl7', sha256: preimage.rawSha256, framedFile: 'message-mllp-framed.bin', framedSha256: sha256Hex(new Uint8Array([0x0b, ...utf8.encode(RAW_MESSAGE), 0x1c, 0x0d])) },
    mappingSha256: { file: 'mapping-config.json', canonical: new TextDecoder().decode(canonicalBytes(MAPPING_CONFIG)), sha256: preimage.mappingSha256 },
    emptySha256: NO_SOURCE_SHA256,
    logKey: {
      name: ORIGIN,
      publicKey: bytesToHex(publicKey),
      keyIdInput: bytesToHex(keyIdInput),
      keyId: LOG_KEY.split('+')[1],
      verifierKey: LOG_KEY,
    },
    witnessKey: WITNESS_KEY,
    checkpoint: {
      number: 3,
      text,
      checkpointHash: bytesToHex(checkpointHash(text)),
      checkpointHashBase64: bytesToBase64(checkpointHash(text)),
      previousText: log.texts[1],
      logSignatureLine: note.lines[0],
      cosignedMessage: new TextDecoder().decode(cosignedMessage(text, WITNESS_TIME)),
      cosignatureLine: note.lines[1],
    },
    migratedCheckpoint: { text: migratedText },
    inclusionProof: good.inclusionProof,
    anchorClaim: { text: claimText, note: signAnchorClaim(claimFor(log, 3), logSigner) },
  };
}

/** Writes the corpus into this folder, removing any file of an earlier run that it no longer holds. */
async function writeCorpus(): Promise<void> {
  const files = await corpusFiles();
  const folder = new URL('./', import.meta.url);
  for (const name of readdirSync(folder)) if (name !== 'generate.ts' && !files.has(name)) rmSync(new URL(name, folder));
  for (const [name, content] of files) writeFileSync(new URL(name, folder), content);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await writeCorpus();
