/**
 * The proof corpus in testdata/proofs/ (specified by docs/proofs.md): every case of its manifest is read with the
 * strict JSON reader and verified with the options the manifest lists, and must fail exactly the checks it lists (or
 * be refused by the reader by the rule it names); the generator must reproduce every file byte for byte; the Ed25519
 * edge cases must be what the manifest says they are; docs/proofs.md must quote the corpus's worked examples as they
 * are; and the real CLI must exit 0 for a genuine bundle and 1 for a tampered one.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import {
  StrictJsonError,
  parseStrictJson,
  verifyBundleForward,
  verifyConsistencyDocument,
  verifyLogBundle,
  base64ToBytes,
  canonicalBytes,
  hexToBytes,
  sha256Hex,
  type LogVerifyOptions,
  type VerificationResult,
} from '../../anchor/index.ts';
import { parseNote, parseVerifierKey } from '../../anchor/log/index.ts';
import { corpusFiles, equations, type CaseOptions, type CorpusCase, type Manifest } from '../../testdata/proofs/generate.ts';

const CORPUS = new URL('../../testdata/proofs/', import.meta.url);
const REPO = fileURLToPath(new URL('../../', import.meta.url));

const bytesOf = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, CORPUS)));
/** A corpus file as text: UTF-8, fatal, as `anchorline verify` reads it. */
const textOf = (name: string): string => new TextDecoder('utf-8', { fatal: true }).decode(bytesOf(name));
const manifest = parseStrictJson(textOf('manifest.json')) as Manifest;

function optionsOf(options: CaseOptions): LogVerifyOptions {
  return {
    ...(options.resource === undefined ? {} : { resource: parseStrictJson(textOf(options.resource)) }),
    ...(options.raw === undefined ? {} : { raw: bytesOf(options.raw) }),
    ...(options.logKey === undefined ? {} : { logKey: options.logKey }),
    ...(options.witnesses === undefined ? {} : { witnesses: options.witnesses }),
    ...(options.witnessesRequired === undefined ? {} : { witnessesRequired: options.witnessesRequired }),
  };
}

function verifyCase(c: CorpusCase): VerificationResult {
  const value = parseStrictJson(textOf(c.file));
  const options = optionsOf(c.options);
  switch (c.kind) {
    case 'bundle':
      return verifyLogBundle(value, options);
    case 'consistency':
      return verifyConsistencyDocument(value, options);
    case 'forward':
      return verifyBundleForward(value, parseStrictJson(textOf(c.consistency!)), options);
  }
}

const failedChecks = (result: VerificationResult): string[] => result.checks.filter((check) => !check.ok).map((check) => check.name);

describe('the proof corpus', () => {
  it('names every file in the folder, and every file it names is there', () => {
    const named = new Set(Object.keys(manifest.inputs));
    for (const c of manifest.cases) {
      named.add(c.file);
      if (c.consistency !== undefined) named.add(c.consistency);
      for (const file of [c.options.resource, c.options.raw]) if (file !== undefined) expect(Object.keys(manifest.inputs), `${c.name}: ${file}`).toContain(file);
    }
    const present = readdirSync(CORPUS).filter((name) => name !== 'generate.ts' && name !== 'manifest.json');
    expect([...named].sort()).toEqual(present.sort());
    expect(new Set(manifest.cases.map((c) => c.name)).size).toBe(manifest.cases.length);
  });

  it('covers genuine and tampered cases of every kind, and each case says either how it fails or that reading refuses it', () => {
    for (const c of manifest.cases) expect(c.readError === undefined, c.name).toBe(c.failed !== undefined);
    for (const kind of ['bundle', 'consistency', 'forward'] as const) {
      const ofKind = manifest.cases.filter((c) => c.kind === kind && c.failed !== undefined);
      expect(ofKind.some((c) => c.failed!.length === 0), `a genuine ${kind}`).toBe(true);
      expect(ofKind.some((c) => c.failed!.length > 0), `a tampered ${kind}`).toBe(true);
    }
    expect(manifest.cases.filter((c) => c.readError !== undefined).length).toBeGreaterThanOrEqual(3);
    expect(manifest.cases.filter((c) => c.equations !== undefined).length).toBeGreaterThanOrEqual(3);
  });

  const verified = manifest.cases.filter((c) => c.readError === undefined);
  it.each(verified.map((c) => [c.name, c] as const))('%s fails exactly the checks the manifest lists', (_name, c) => {
    const result = verifyCase(c);
    expect(failedChecks(result)).toEqual(c.failed);
    expect(result.ok).toBe(c.failed!.length === 0);
  });

  const refused = manifest.cases.filter((c) => c.readError !== undefined);
  it.each(refused.map((c) => [c.name, c] as const))('%s is refused by the strict reader by the rule the manifest names', (_name, c) => {
    let error: unknown;
    try {
      parseStrictJson(textOf(c.file));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(StrictJsonError);
    expect((error as StrictJsonError).rule).toBe(c.readError);
  });

  it('refuses the repeated salt that a reader keeping the last member would verify', () => {
    // What the manifest says of this case: JSON.parse keeps the second salt, the genuine one.
    const lenient = JSON.parse(textOf('json-duplicate-salt.json')) as unknown;
    expect(verifyLogBundle(lenient).ok).toBe(true);
  });

  it.each(manifest.cases.filter((c) => c.equations !== undefined).map((c) => [c.name, c] as const))(
    '%s: its checkpoint signature satisfies the Ed25519 equations as the manifest says',
    (_name, c) => {
      const bundle = parseStrictJson(textOf(c.file)) as { checkpoint: string; logKey: string };
      const note = parseNote(bundle.checkpoint);
      const key = parseVerifierKey(bundle.logKey);
      if (!note.ok || !key.ok) throw new Error('the case does not parse');
      const signature = note.value.signatures[0]!.signature;
      const message = new TextEncoder().encode(note.value.text);
      expect(equations(signature, message, key.value.publicKey)).toEqual(c.equations);
      // Independently of the generator: ZIP-215 verification is the cofactored equation and accepts small-order points.
      expect(ed25519.verify(signature, message, key.value.publicKey, { zip215: true })).toBe(c.equations!.cofactored);
    },
  );

  it('is what generate.ts writes today (regenerate with npx tsx testdata/proofs/generate.ts)', async () => {
    const files = await corpusFiles();
    for (const [name, content] of files) expect(Buffer.from(bytesOf(name)).equals(Buffer.from(content)), name).toBe(true);
    expect(files.size).toBe(readdirSync(CORPUS).length - 1);
  });
});

describe('the corpus inputs', () => {
  it('hash to what the genuine leaf names: the resource by JCS, the raw message as received, the mapping config by JCS', () => {
    const { leaf } = parseStrictJson(textOf('bundle-good.json')) as { leaf: { preimage: Record<string, string> } };
    expect(sha256Hex(canonicalBytes(parseStrictJson(textOf('resource.json'))))).toBe(leaf.preimage.resourceSha256);
    expect(sha256Hex(bytesOf('message.hl7'))).toBe(leaf.preimage.rawSha256);
    expect(sha256Hex(canonicalBytes(parseStrictJson(textOf('mapping-config.json'))))).toBe(leaf.preimage.mappingSha256);
    // The framing bytes are not part of the message.
    const framed = bytesOf('message-mllp-framed.bin');
    expect([framed[0], framed[framed.length - 2], framed[framed.length - 1]]).toEqual([0x0b, 0x1c, 0x0d]);
    expect(Buffer.from(framed.subarray(1, -2)).equals(Buffer.from(bytesOf('message.hl7')))).toBe(true);
  });
});

describe('docs/proofs.md', () => {
  const docs = readFileSync(new URL('../../docs/proofs.md', import.meta.url), 'utf8');
  const vectors = parseStrictJson(textOf('vectors.json')) as {
    leaf: { leafBytes: string; leafHash: string };
    resource: { canonical: string; resourceSha256: string };
    rawSha256: { sha256: string; framedSha256: string };
    mappingSha256: { sha256: string };
    logKey: { publicKey: string; keyIdInput: string; keyId: string; verifierKey: string };
    witnessKey: string;
    checkpoint: { text: string; checkpointHash: string; checkpointHashBase64: string; logSignatureLine: string; cosignedMessage: string; cosignatureLine: string };
    migratedCheckpoint: { text: string };
    anchorClaim: { text: string };
  };

  it('quotes the worked examples of testdata/proofs/vectors.json as they are', () => {
    const quoted = [
      vectors.leaf.leafBytes,
      vectors.leaf.leafHash,
      vectors.resource.canonical,
      vectors.resource.resourceSha256,
      vectors.rawSha256.sha256,
      vectors.rawSha256.framedSha256,
      vectors.mappingSha256.sha256,
      vectors.logKey.publicKey,
      vectors.logKey.keyIdInput,
      vectors.logKey.verifierKey,
      vectors.witnessKey,
      vectors.checkpoint.text,
      vectors.checkpoint.checkpointHash,
      vectors.checkpoint.logSignatureLine,
      vectors.checkpoint.cosignedMessage,
      vectors.checkpoint.cosignatureLine,
      vectors.migratedCheckpoint.text,
      vectors.anchorClaim.text,
    ];
    for (const text of quoted) expect(docs, text).toContain(text);
  });

  it('quotes a key ID that is the first 4 bytes of SHA-256 of the quoted input', async () => {
    const { sha256 } = await import('@noble/hashes/sha2.js');
    expect(Buffer.from(sha256(hexToBytes(vectors.logKey.keyIdInput)).slice(0, 4)).toString('hex')).toBe(vectors.logKey.keyId);
    expect(base64ToBytes(vectors.checkpoint.checkpointHashBase64)).toEqual(hexToBytes(vectors.checkpoint.checkpointHash));
  });
});

describe('anchorline verify on the corpus', () => {
  const cli = (file: string): number | null =>
    spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'verify', fileURLToPath(new URL(file, CORPUS))], { cwd: REPO, encoding: 'utf8', timeout: 60_000 }).status;

  it('exits 0 for a genuine bundle and 1 for a tampered one', () => {
    expect(cli('bundle-good.json')).toBe(0);
    expect(cli('preimage-salt.json')).toBe(1);
  });
});
