/**
 * A verifier as strict as the strictest: every laxness an independent verifier could read differently is refused,
 * each with its reason. Each case edits the JSON text of one genuine bundle (the fixture log of
 * test/fixtures/anchor/bundle/generate.ts) and names what must refuse it: the strict reader (parseStrictJson, with
 * its rule), or the checks that must fail and a phrase of the reason they give.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import {
  bytesToBase64Url,
  bytesToHex,
  headerBytes,
  base64UrlToBytes,
  parseJson,
  parseStrictJson,
  StrictJsonError,
  verifyBundle,
  type ProofBundle,
  type StrictJsonRule,
  type VerificationResult,
} from '../../anchor/index.ts';
import { buildLog, bundleFor, FIXTURE_BATCH_SIZES, FIXTURE_LEAF_INDEX, FIXTURE_PRIVATE_KEY, fixtureSalt } from '../fixtures/anchor/bundle/generate.ts';

const log = buildLog(FIXTURE_BATCH_SIZES, { privateKey: FIXTURE_PRIVATE_KEY, saltFor: fixtureSalt });
const genuine = bundleFor(log, FIXTURE_LEAF_INDEX);
const genuineText = JSON.stringify(genuine);
const resourceText = JSON.stringify(log.leaves[FIXTURE_LEAF_INDEX]!.resource);

const failedChecks = (result: VerificationResult): string[] => result.checks.filter((check) => !check.ok).map((check) => check.name);

/** `text` with the first occurrence of `from` replaced; the case is void if `from` is not there, so that is an error. */
function replaceFirst(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0) throw new Error(`the genuine bundle has no ${from}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** The bundle text with one value of the parsed bundle changed: for fields whose text form is not the point. */
function withValue(edit: (bundle: ProofBundle) => void): string {
  const bundle = structuredClone(genuine);
  edit(bundle);
  return JSON.stringify(bundle);
}

const { root, time } = genuine.batch.header;
const { leafHash, preimage } = genuine.leaf;
const evm = { driver: 'evm', chainId: 31337, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3', txHash: `0x${'ab'.repeat(32)}`, blockNumber: 12, blockHash: `0x${'cd'.repeat(32)}`, batchNumber: 3 };

type Expectation = { refused: StrictJsonRule } | { failed: string[]; reason: string };
const cases: Array<[string, () => string, Expectation]> = [
  // Duplicate members: refused whatever the values; lossless-json let the equal ones through and JSON.parse keeps the last.
  ['a repeated member with an equal value', () => replaceFirst(genuineText, '{"format"', `{"format":"anchorline-proof/1","format"`), { refused: 'duplicate-member' }],
  ['a repeated root, the first one different', () => replaceFirst(genuineText, `"root":"${root}"`, `"root":"${'0'.repeat(64)}","root":"${root}"`), { refused: 'duplicate-member' }],
  ['a repeated preimage member spelt with an escape', () => replaceFirst(genuineText, '"salt":', `"\\u0073alt":"${preimage.salt}","salt":`), { refused: 'duplicate-member' }],
  ['a repeated anchor driver', () => replaceFirst(genuineText, '"anchor":{"driver":"local"}', '"anchor":{"driver":"local","driver":"local"}'), { refused: 'duplicate-member' }],
  // Lone surrogates, escaped and raw.
  ['an escaped lone surrogate in the preimage id', () => replaceFirst(genuineText, `"id":"${preimage.id}"`, `"id":"${preimage.id}\\ud800"`), { refused: 'lone-surrogate' }],
  ['a raw lone surrogate in the terminology version', () => replaceFirst(genuineText, '"terminologyVersion":"none"', '"terminologyVersion":"none\udfff"'), { refused: 'lone-surrogate' }],
  ['an escaped lone surrogate in a member name', () => replaceFirst(genuineText, '{"format"', '{"\\ud800":1,"format"'), { refused: 'lone-surrogate' }],
  // Outside RFC 8259's grammar.
  ['a trailing comma', () => replaceFirst(genuineText, '"headerChain":[', '"headerChain":[,'), { refused: 'syntax' }],
  ['a leading zero', () => replaceFirst(genuineText, `"leafIndex":${FIXTURE_LEAF_INDEX}`, `"leafIndex":0${FIXTURE_LEAF_INDEX}`), { refused: 'syntax' }],
  ['a byte order mark inside the text', () => `\ufeff${genuineText}`, { refused: 'syntax' }],
  ['a second JSON value after the bundle', () => `${genuineText}{}`, { refused: 'syntax' }],
  // Integers: plain decimal digits, in range.
  ['an integer written with a fraction', () => replaceFirst(genuineText, `"leafIndex":${FIXTURE_LEAF_INDEX}`, `"leafIndex":${FIXTURE_LEAF_INDEX}.0`), { failed: ['bundle-format'], reason: 'leaf.leafIndex must be an integer' }],
  ['an integer written with an exponent', () => replaceFirst(genuineText, '"batchNumber":2', '"batchNumber":2e0'), { failed: ['bundle-format'], reason: 'batch.header.batchNumber must be an integer' }],
  ['a version written 1.0', () => replaceFirst(genuineText, '"v":1', '"v":1.0'), { failed: ['bundle-format'], reason: 'leaf.preimage.v must be 1' }],
  ['-0 as the leaf index', () => replaceFirst(genuineText, `"leafIndex":${FIXTURE_LEAF_INDEX}`, '"leafIndex":-0'), { failed: ['bundle-format'], reason: 'leaf.leafIndex must be an integer >= 0' }],
  ['a leaf index of 2^53', () => replaceFirst(genuineText, `"leafIndex":${FIXTURE_LEAF_INDEX}`, '"leafIndex":9007199254740992'), { failed: ['bundle-format'], reason: 'leaf.leafIndex must be an integer' }],
  ['batch number 0', () => replaceFirst(genuineText, '"batchNumber":2', '"batchNumber":0'), { failed: ['bundle-format'], reason: 'batchNumber must be an integer >= 1' }],
  ['a leaf count of 0', () => withValue((b) => void (b.batch.header.leafCount = 0)), { failed: ['bundle-format'], reason: 'leafCount must be an integer >= 1' }],
  ['a batch ending past 2^53 - 1', () => withValue((b) => void (b.batch.header.firstLeafIndex = 2 ** 53 - 2)), { failed: ['bundle-format'], reason: 'exceeds 2^53 - 1' }],
  ['an evm block number below 0', () => withValue((b) => void (b.anchor = { ...evm, blockNumber: -1 } as never)), { failed: ['anchor'], reason: 'blockNumber must be an integer >= 0' }],
  // Hex: lowercase, exact length.
  ['an uppercase leaf hash', () => replaceFirst(genuineText, leafHash, leafHash.toUpperCase()), { failed: ['bundle-format'], reason: 'leaf.leafHash must be 64 lowercase hex digits' }],
  ['an uppercase public key', () => withValue((b) => void (b.publicKey = b.publicKey.toUpperCase())), { failed: ['bundle-format'], reason: 'publicKey must be 64 lowercase hex digits' }],
  ['a 62-digit root', () => replaceFirst(genuineText, root, root.slice(2)), { failed: ['bundle-format'], reason: 'root must be 64 lowercase hex digits' }],
  ['a 66-digit resource hash', () => withValue((b) => void (b.leaf.preimage.resourceSha256 += '00')), { failed: ['bundle-format'], reason: 'resourceSha256 must be 64 lowercase hex digits' }],
  ['a 0x-prefixed header hash', () => withValue((b) => void (b.batch.headerHash = `0x${b.batch.headerHash.slice(2)}`)), { failed: ['bundle-format'], reason: 'batch.headerHash must be 64 lowercase hex digits' }],
  ['an audit path entry in uppercase', () => withValue((b) => void (b.auditPath[0] = b.auditPath[0]!.toUpperCase())), { failed: ['bundle-format'], reason: 'auditPath[0] must be 64 lowercase hex digits' }],
  ['an audit path of 54 hashes', () => withValue((b) => void (b.auditPath = new Array(54).fill(root))), { failed: ['bundle-format'], reason: 'auditPath must have at most 53 entries' }],
  ['an evm transaction hash in uppercase', () => withValue((b) => void (b.anchor = { ...evm, txHash: evm.txHash.toUpperCase().replace('0X', '0x') } as never)), { failed: ['anchor'], reason: 'txHash must be 0x and 64 lowercase hex digits' }],
  ['an evm block hash in uppercase', () => withValue((b) => void (b.anchor = { ...evm, blockHash: evm.blockHash.toUpperCase().replace('0X', '0x') } as never)), { failed: ['anchor'], reason: 'blockHash must be 0x and 64 lowercase hex digits' }],
  // base64url: unpadded, exact length, zero unused bits.
  ['a padded salt', () => withValue((b) => void (b.leaf.preimage.salt += '==')), { failed: ['bundle-format'], reason: 'salt must be unpadded base64url of 16 bytes' }],
  ['a salt with non-zero unused bits', () => withValue((b) => void (b.leaf.preimage.salt = b.leaf.preimage.salt.slice(0, 21) + nextBase64UrlChar(b.leaf.preimage.salt[21]!))), { failed: ['bundle-format'], reason: 'salt must be unpadded base64url of 16 bytes' }],
  ['a salt of 15 bytes', () => withValue((b) => void (b.leaf.preimage.salt = bytesToBase64Url(base64UrlToBytes(b.leaf.preimage.salt).slice(1)))), { failed: ['bundle-format'], reason: 'salt must be unpadded base64url of 16 bytes' }],
  ['a signature in standard base64', () => withValue((b) => void (b.batch.signature = b.batch.signature.replaceAll('-', '+').replaceAll('_', '/') + '==')), { failed: ['bundle-format'], reason: 'batch.signature must be unpadded base64url of 64 bytes' }],
  // Times: the one format, YYYY-MM-DDTHH:MM:SS.sssZ.
  ['a time without milliseconds', () => replaceFirst(genuineText, time, time.replace('.000Z', 'Z')), { failed: ['bundle-format'], reason: 'time must be a UTC time written YYYY-MM-DDTHH:MM:SS.sssZ' }],
  ['a time with microseconds', () => replaceFirst(genuineText, time, time.replace('.000Z', '.000000Z')), { failed: ['bundle-format'], reason: 'YYYY-MM-DDTHH:MM:SS.sssZ' }],
  ['a time with an offset', () => replaceFirst(genuineText, time, time.replace('Z', '+00:00')), { failed: ['bundle-format'], reason: 'YYYY-MM-DDTHH:MM:SS.sssZ' }],
  ['a time in lowercase', () => replaceFirst(genuineText, time, time.toLowerCase()), { failed: ['bundle-format'], reason: 'YYYY-MM-DDTHH:MM:SS.sssZ' }],
  ['a time with a space for T', () => replaceFirst(genuineText, time, time.replace('T', ' ')), { failed: ['bundle-format'], reason: 'YYYY-MM-DDTHH:MM:SS.sssZ' }],
  ['a time at 24:00', () => replaceFirst(genuineText, time, time.replace('T12', 'T24')), { failed: ['bundle-format'], reason: 'YYYY-MM-DDTHH:MM:SS.sssZ' }],
  ['a leap second', () => replaceFirst(genuineText, time, time.replace(':00.000Z', ':60.000Z')), { failed: ['bundle-format'], reason: 'YYYY-MM-DDTHH:MM:SS.sssZ' }],
  // No unknown members, at any level.
  ['an unknown bundle member', () => replaceFirst(genuineText, '{"format"', '{"note":"x","format"'), { failed: ['bundle-format'], reason: 'bundle has unexpected member(s) "note"' }],
  ['an unknown leaf member', () => replaceFirst(genuineText, '"leafIndex"', '"treeSize":19,"leafIndex"'), { failed: ['bundle-format'], reason: 'leaf has unexpected member(s) "treeSize"' }],
  ['an unknown preimage member', () => replaceFirst(genuineText, '"salt"', '"note":"","salt"'), { failed: ['bundle-format'], reason: 'leaf.preimage has unexpected member(s) "note"' }],
  ['an unknown signed-header member', () => replaceFirst(genuineText, '"signature"', '"keyId":"k1","signature"'), { failed: ['bundle-format'], reason: 'batch has unexpected member(s) "keyId"' }],
  ['an unknown header member', () => replaceFirst(genuineText, '"root"', '"treeSize":19,"root"'), { failed: ['bundle-format'], reason: 'batch.header has unexpected member(s) "treeSize"' }],
  ['an unknown member in a chain entry', () => withValue((b) => void ((b.headerChain[0] as unknown as Record<string, unknown>).note = 1)), { failed: ['bundle-format'], reason: 'headerChain[0] has unexpected member(s) "note"' }],
  ['an unknown local anchor member', () => replaceFirst(genuineText, '{"driver":"local"}', '{"driver":"local","chainId":1}'), { failed: ['anchor'], reason: 'local anchor has unexpected member(s) "chainId"' }],
  ['an unknown evm anchor member', () => withValue((b) => void (b.anchor = { ...evm, extra: true } as never)), { failed: ['anchor'], reason: 'anchor has unexpected member(s) "extra"' }],
  // Strings without a grammar of their own: non-empty.
  ['an empty resource type', () => withValue((b) => void (b.leaf.preimage.resourceType = '')), { failed: ['bundle-format'], reason: 'leaf.preimage.resourceType must be a non-empty string' }],
];

/** The base64url character after `char`, so that the last character of a 16-byte salt gets a non-zero unused bit. */
function nextBase64UrlChar(char: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  return alphabet[(alphabet.indexOf(char) + 1) % 64]!;
}

describe('a verifier as strict as the strictest', () => {
  it('verifies the genuine bundle and its resource, read strictly', () => {
    const result = verifyBundle(parseStrictJson(genuineText), { resource: parseStrictJson(resourceText) });
    expect(failedChecks(result)).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it.each(cases)('refuses %s', (_, makeText, expected) => {
    const text = makeText();
    expect(text).not.toBe(genuineText);
    if ('refused' in expected) {
      expect(() => parseStrictJson(text)).toThrow(StrictJsonError);
      try {
        parseStrictJson(text);
      } catch (error) {
        expect((error as StrictJsonError).rule).toBe(expected.refused);
      }
      return;
    }
    const result = verifyBundle(parseStrictJson(text));
    expect(failedChecks(result)).toContain(expected.failed[0]);
    expect(result.ok).toBe(false);
    const failing = result.checks.find((check) => check.name === expected.failed[0])!;
    expect(failing.detail).toContain(expected.reason);
    if (expected.failed[0] === 'bundle-format') expect(result.checks.every((check) => !check.ok)).toBe(true);
    else expect(failedChecks(result)).toEqual(expected.failed);
  });

  it('refuses what the lax reader let through: a repeated member with an equal value verified before', () => {
    const text = replaceFirst(genuineText, `"root":"${root}"`, `"root":"${root}","root":"${root}"`);
    expect(verifyBundle(parseJson(text)).ok).toBe(true);
    expect(() => parseStrictJson(text)).toThrow(/member name "root" appears twice in one object/);
  });

  it('refuses a resource file with a repeated member or a lone surrogate, which the bundle alone cannot catch', () => {
    const gender = JSON.stringify((log.leaves[FIXTURE_LEAF_INDEX]!.resource as { gender: string }).gender);
    const repeated = replaceFirst(resourceText, '"gender":', `"gender":${gender},"gender":`);
    // Read laxly, an equal repeated member vanishes and the resource hashes as the leaf says: only the reader can refuse it.
    expect(verifyBundle(genuine, { resource: parseJson(repeated) }).ok).toBe(true);
    expect(() => parseStrictJson(repeated)).toThrow(/member name "gender" appears twice/);
    expect(() => parseStrictJson(replaceFirst(resourceText, '"gender":', '"gender":"other","gender":'))).toThrow(StrictJsonError);
    expect(() => parseStrictJson(replaceFirst(resourceText, '"family":"', '"family":"\\udbff'))).toThrow(/surrogate/);
  });

  it('refuses a header signed under a key with a torsion component that a cofactored check accepts', () => {
    // A' = aB + T (T of order 8): headers signed with scalar a under A'. Where [k]T is not the identity, the
    // cofactored equation (noble's RFC 8032 mode, used before) still holds, the cofactorless one (OpenSSL) does not.
    const { scalar } = ed25519.utils.getExtendedPublicKey(FIXTURE_PRIVATE_KEY);
    const torsion = ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
    const dirtyKey = ed25519.Point.BASE.multiply(scalar).add(torsion).toBytes();
    const bundle = structuredClone(genuine);
    bundle.publicKey = bytesToHex(dirtyKey);
    for (const signed of [bundle.batch, ...bundle.headerChain]) signed.signature = bytesToBase64Url(signWithResidue(headerBytes(signed.header), scalar, dirtyKey));
    for (const signed of [bundle.batch, ...bundle.headerChain]) {
      expect(ed25519.verify(base64UrlToBytes(signed.signature), headerBytes(signed.header), dirtyKey, { zip215: false })).toBe(true);
    }
    const result = verifyBundle(parseStrictJson(JSON.stringify(bundle)));
    expect(failedChecks(result)).toEqual(['header-signature']);
    expect(result.checks.find((check) => check.name === 'header-signature')!.detail).toContain('batches 2, 3');
  });
});

/** An Ed25519 signature by scalar `a` under `publicKey`, with a nonce chosen so that k is not a multiple of 8. */
function signWithResidue(message: Uint8Array, a: bigint, publicKey: Uint8Array): Uint8Array {
  const L = ed25519.Point.Fn.ORDER;
  for (let nonce = 1000n; ; nonce++) {
    const encodedR = ed25519.Point.BASE.multiply(nonce).toBytes();
    const k = littleEndian(sha512(new Uint8Array([...encodedR, ...publicKey, ...message]))) % L;
    if (k % 8n === 0n) continue;
    const s = (nonce + k * a) % L;
    const encodedS = new Uint8Array(32);
    for (let i = 0; i < 32; i++) encodedS[i] = Number((s >> BigInt(8 * i)) & 0xffn);
    return new Uint8Array([...encodedR, ...encodedS]);
  }
}

function littleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}
