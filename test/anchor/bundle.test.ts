import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  VERIFICATION_CHECK_NAMES,
  bytesToHex,
  generateSigningKey,
  headerHash,
  newSalt,
  publicKeyFor,
  signHeader,
  verifyBundle,
  verifyHeaderSignature,
  type ProofBundle,
  type VerificationResult,
} from '../../anchor/index.ts';
import {
  buildLog,
  bundleFor,
  fixtureFiles,
  flipBase64UrlByte,
  flipHexDigit,
  type FixtureCase,
} from '../fixtures/anchor/bundle/generate.ts';

const FIXTURES = new URL('../fixtures/anchor/bundle/', import.meta.url);
const readFixture = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));

const failedChecks = (result: VerificationResult): string[] => result.checks.filter((check) => !check.ok).map((check) => check.name);
const checkNames = (result: VerificationResult): string[] => result.checks.map((check) => check.name);
const ALL_BUT_RESOURCE = VERIFICATION_CHECK_NAMES.filter((name) => name !== 'resource-hash' && name !== 'raw-hash');
const WITH_RESOURCE = VERIFICATION_CHECK_NAMES.filter((name) => name !== 'raw-hash');

// A real log, as the engine would build it: random key, random salts, three chained batches of 1, 5 and 13 leaves.
const { privateKey } = generateSigningKey();
const log = buildLog([1, 5, 13], { privateKey, saltFor: () => newSalt() });
const LEAF_COUNT = 19;

describe('header signatures', () => {
  it('verify under the signing key only', () => {
    const { header, signature } = log.batches[0]!;
    expect(verifyHeaderSignature(header, signature, log.publicKeyHex)).toBe(true);
    expect(verifyHeaderSignature(header, signature, bytesToHex(generateSigningKey().publicKey))).toBe(false);
    expect(verifyHeaderSignature({ ...header, leafCount: 2 }, signature, log.publicKeyHex)).toBe(false);
    expect(bytesToHex(publicKeyFor(privateKey))).toBe(log.publicKeyHex);
  });

  it('are false, not thrown, for malformed signatures and keys', () => {
    const { header, signature } = log.batches[0]!;
    for (const [sig, key] of [['', log.publicKeyHex], ['!!', log.publicKeyHex], [signature, 'zz'], [signature, ''], [signature.slice(2), log.publicKeyHex]]) {
      expect(verifyHeaderSignature(header, sig!, key!)).toBe(false);
    }
  });
});

describe('verifyBundle on real bundles', () => {
  it('verifies every leaf of every batch, with and without its resource', () => {
    for (let leafIndex = 0; leafIndex < LEAF_COUNT; leafIndex++) {
      const bundle = bundleFor(log, leafIndex);
      const result = verifyBundle(bundle);
      expect(failedChecks(result), `leaf ${leafIndex}`).toEqual([]);
      expect(result.ok).toBe(true);
      expect(checkNames(result)).toEqual(ALL_BUT_RESOURCE);
      const withResource = verifyBundle(JSON.parse(JSON.stringify(bundle)), { resource: log.leaves[leafIndex]!.resource });
      expect(withResource.ok, `leaf ${leafIndex} with resource`).toBe(true);
      expect(checkNames(withResource)).toEqual(WITH_RESOURCE);
    }
  });

  // Each case changes one byte of one field and names exactly the checks that must fail. `applies` skips leaves where
  // the field does not exist (a batch of one leaf has no audit path; the newest batch has no chain).
  const tamperings: Array<{ what: string; failed: string[]; applies?: (b: ProofBundle) => boolean; tamper: (b: ProofBundle) => void }> = [
    { what: "the preimage's resourceSha256", failed: ['leaf-hash'], tamper: (b) => void (b.leaf.preimage.resourceSha256 = flipHexDigit(b.leaf.preimage.resourceSha256, 7)) },
    { what: 'the salt', failed: ['leaf-hash'], tamper: (b) => void (b.leaf.preimage.salt = flipBase64UrlByte(b.leaf.preimage.salt, 15)) },
    { what: 'the leaf hash', failed: ['leaf-hash', 'inclusion'], tamper: (b) => void (b.leaf.leafHash = flipHexDigit(b.leaf.leafHash, 40)) },
    {
      what: 'an audit path entry',
      failed: ['inclusion'],
      applies: (b) => b.auditPath.length > 0,
      tamper: (b) => void (b.auditPath[b.auditPath.length - 1] = flipHexDigit(b.auditPath[b.auditPath.length - 1]!, 0)),
    },
    { what: 'the root', failed: ['inclusion', 'header-hash', 'header-signature'], tamper: (b) => void (b.batch.header.root = flipHexDigit(b.batch.header.root, 63)) },
    { what: 'the header time', failed: ['header-hash', 'header-signature'], tamper: (b) => void (b.batch.header.time = b.batch.header.time.replace('T12', 'T13')) },
    { what: 'the signature', failed: ['header-signature'], tamper: (b) => void (b.batch.signature = flipBase64UrlByte(b.batch.signature, 40)) },
    { what: 'the public key', failed: ['header-signature'], tamper: (b) => void (b.publicKey = flipHexDigit(b.publicKey, 1)) },
    {
      what: "a chain entry's previousHeaderHash",
      failed: ['header-hash', 'header-signature', 'header-chain'],
      applies: (b) => b.headerChain.length > 0,
      tamper: (b) => {
        const last = b.headerChain[b.headerChain.length - 1]!.header;
        last.previousHeaderHash = flipHexDigit(last.previousHeaderHash, 12);
      },
    },
  ];

  it.each(tamperings)('fails exactly $failed when one byte of $what changes, for every leaf', ({ failed, applies, tamper }) => {
    let tested = 0;
    for (let leafIndex = 0; leafIndex < LEAF_COUNT; leafIndex++) {
      const bundle = bundleFor(log, leafIndex);
      if (applies && !applies(bundle)) continue;
      tamper(bundle);
      const result = verifyBundle(bundle);
      expect(failedChecks(result), `leaf ${leafIndex}`).toEqual(failed);
      expect(result.ok).toBe(false);
      tested++;
    }
    expect(tested).toBeGreaterThan(5);
  });

  it('fails only resource-hash when the resource given differs by one byte, or in type, id or version', () => {
    const leafIndex = 4;
    const bundle = bundleFor(log, leafIndex);
    const resource = log.leaves[leafIndex]!.resource as { name: Array<{ family: string }>; meta: { versionId: string }; id: string };
    const variants: unknown[] = [
      { ...resource, name: [{ ...resource.name[0]!, family: resource.name[0]!.family.replace('T', 'U') }] },
      { ...resource, meta: { ...resource.meta, versionId: '9' } },
      { ...resource, id: 'pat-9999' },
      { ...resource, resourceType: 'Practitioner' },
      { ...resource, meta: undefined },
      'not a resource',
      [resource],
      { ...resource, birthDate: new Date(0) }, // no JSON form: reported, not thrown
    ];
    for (const variant of variants) {
      const result = verifyBundle(bundle, { resource: variant });
      expect(failedChecks(result)).toEqual(['resource-hash']);
    }
  });

  it("never repeats the preimage's or resource's values in its details", () => {
    const secret = 'Secretname';
    const bundle = bundleFor(log, 2);
    bundle.leaf.preimage.id = `${secret}-id`;
    bundle.leaf.preimage.versionId = `${secret}-version`;
    const resource = { resourceType: 'Patient', id: `${secret}-other`, meta: { versionId: secret }, name: [{ family: secret }] };
    const results = [
      verifyBundle(bundle, { resource }),
      verifyBundle({ ...bundle, leaf: { ...bundle.leaf, preimage: { ...bundle.leaf.preimage, id: 5, salt: secret } } }, { resource }),
      verifyBundle(bundle, { resource: { ...resource, weird: () => secret } }),
    ];
    for (const result of results) {
      expect(result.ok).toBe(false);
      expect(JSON.stringify(result)).not.toContain(secret);
    }
  });

  it('fails the chain rule when batch 1 does not start the log, even if re-signed', () => {
    const bundle = bundleFor(log, 0);
    const header = { ...bundle.batch.header, previousHeaderHash: flipHexDigit(bundle.batch.header.previousHeaderHash, 0) };
    bundle.batch = { header, headerHash: headerHash(header), signature: signHeader(header, privateKey) };
    const result = verifyBundle(bundle);
    expect(failedChecks(result)).toEqual(['header-chain']);
    expect(result.checks.find((check) => check.name === 'header-chain')!.detail).toContain('batch 1');
  });

  it('fails inclusion for a leaf index outside the batch', () => {
    const bundle = bundleFor(log, 7);
    bundle.leaf.leafIndex = 2;
    expect(failedChecks(verifyBundle(bundle))).toEqual(['inclusion']);
  });

  it('checks only the structure of an evm anchor', () => {
    const evm = {
      driver: 'evm' as const,
      chainId: 31337,
      contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      txHash: `0x${'ab'.repeat(32)}`,
      blockNumber: 12,
      blockHash: `0x${'cd'.repeat(32)}`,
      batchNumber: 3,
    };
    const good = verifyBundle(bundleFor(log, 2, evm));
    expect(good.ok).toBe(true);
    expect(good.checks.find((check) => check.name === 'anchor')!.detail).toContain('not looked up on chain');
    for (const broken of [{ ...evm, batchNumber: 1 }, { ...evm, txHash: '0x12' }, { ...evm, chainId: 0 }, { ...evm, extra: 1 }]) {
      expect(failedChecks(verifyBundle(bundleFor(log, 2, broken as typeof evm)))).toEqual(['anchor']);
    }
    const local = verifyBundle(bundleFor(log, 2));
    expect(local.checks.find((check) => check.name === 'anchor')!.detail).toContain('nothing is anchored outside the engine');
    expect(failedChecks(verifyBundle(bundleFor(log, 2, { driver: 'local', chainId: 1 } as never)))).toEqual(['anchor']);
  });
});

describe('verifyBundle on garbage', () => {
  const malformed: Array<[string, unknown]> = [
    ['null', null],
    ['undefined', undefined],
    ['an array', []],
    ['a string', 'anchorline-proof/1'],
    ['a number', 42],
    ['an empty object', {}],
    ['the format alone', { format: 'anchorline-proof/1' }],
    ['a bundle missing its batch', (() => { const b: Partial<ProofBundle> = bundleFor(log, 3); delete b.batch; return b; })()],
    ['a bundle with an undefined member', { ...bundleFor(log, 3), headerChain: undefined }],
    ['a sparse audit path', { ...bundleFor(log, 3), auditPath: new Array(3) }],
    ['a sparse header chain', { ...bundleFor(log, 3), headerChain: new Array(1) }],
    ['an unknown member', { ...bundleFor(log, 3), note: 'hello' }],
    ['a lone surrogate in the preimage', (() => { const b = bundleFor(log, 3); b.leaf.preimage.id = 'pat-\ud800'; return b; })()],
    ['an uppercase hex root', (() => { const b = bundleFor(log, 3); b.batch.header.root = b.batch.header.root.toUpperCase(); return b; })()],
    ['a padded salt', (() => { const b = bundleFor(log, 3); b.leaf.preimage.salt += '=='; return b; })()],
    ['an impossible date', (() => { const b = bundleFor(log, 3); b.batch.header.time = '2025-02-30T12:00:00.000Z'; return b; })()],
    ['a local time', (() => { const b = bundleFor(log, 3); b.batch.header.time = '2025-03-02T12:00:00+01:00'; return b; })()],
    ['a fractional leaf index', (() => { const b = bundleFor(log, 3); b.leaf.leafIndex = 3.5; return b; })()],
    ['an unsafe leaf count', (() => { const b = bundleFor(log, 3); b.batch.header.leafCount = 2 ** 53; return b; })()],
    ['an unknown anchor driver', { ...bundleFor(log, 3), anchor: { driver: 'ipfs' } }],
    ['a class instance', new (class Bundle {})()],
  ];

  it.each(malformed)('reports %s as a failed bundle-format, listing every check', (_, input) => {
    const result = verifyBundle(input);
    expect(result.ok).toBe(false);
    expect(result.checks[0]).toMatchObject({ name: 'bundle-format', ok: false });
    expect(result.checks[0]!.detail.length).toBeGreaterThan(0);
    expect(checkNames(result)).toEqual(ALL_BUT_RESOURCE);
    expect(result.checks.every((check) => !check.ok)).toBe(true);
  });

  it('does not throw for inputs whose reading throws', () => {
    const hostile = new Proxy({}, { get: () => { throw new Error('boom'); }, ownKeys: () => { throw new Error('boom'); } });
    for (const input of [hostile, { ...bundleFor(log, 1), leaf: hostile }]) {
      const result = verifyBundle(input);
      expect(result.ok).toBe(false);
    }
    expect(verifyBundle(bundleFor(log, 1), hostile as never).ok).toBe(false);
  });

  it('never throws and never verifies, for any JSON-like value', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true, withSparseArray: true }), (input) => {
        const result = verifyBundle(input);
        expect(result.ok).toBe(false);
        expect(result.checks.length).toBeGreaterThan(0);
      }),
    );
  });

  it('never throws, and fails, when any one value in a good bundle is replaced', () => {
    const good = bundleFor(log, 8);
    const paths = leafPaths(good);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, replacement) => {
        const bundle = structuredClone(good) as unknown as Record<string, unknown>;
        setAt(bundle, path, replacement);
        const result = verifyBundle(bundle);
        expect(result.ok).toBe(isDeepStrictEqual(bundle, good));
      }),
      { numRuns: 500 },
    );
  });
});

describe('committed fixtures', () => {
  const cases = readFixture('cases.json') as FixtureCase[];

  it('cover the tamperings the format must catch', () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
    expect(cases.filter((c) => c.failed.length === 0).length).toBeGreaterThanOrEqual(2);
  });

  it.each(cases)('$bundle (resource: $resource) fails exactly $failed ($why)', ({ bundle, resource, failed }) => {
    const result = verifyBundle(readFixture(bundle), resource === undefined ? undefined : { resource: readFixture(resource) });
    expect(failedChecks(result)).toEqual(failed);
    expect(result.ok).toBe(failed.length === 0);
    expect(checkNames(result)).toEqual(resource === undefined ? ALL_BUT_RESOURCE : WITH_RESOURCE);
  });

  it('are what generate.ts writes today (regenerate with npx tsx test/fixtures/anchor/bundle/generate.ts)', () => {
    for (const [name, value] of fixtureFiles()) expect(readFixture(name), name).toEqual(value);
  });
});

/** Paths to every scalar and container in `value`, as key lists. */
function leafPaths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const paths: Array<Array<string | number>> = prefix.length > 0 ? [prefix] : [];
  if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      paths.push(...leafPaths(child, [...prefix, Array.isArray(value) ? Number(key) : key]));
    }
  }
  return paths;
}

function setAt(root: Record<string, unknown>, path: Array<string | number>, replacement: unknown): void {
  let node: Record<string | number, unknown> = root;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = replacement;
}
