/**
 * `anchorline verify`: checks proofs offline (anchor/log-bundle.ts for anchorline-proof/2 and consistency documents,
 * anchor/bundle.ts for the older anchorline-proof/1), and with --rpc also a bundle's chain anchor against a node the
 * auditor chooses (anchor/chain/verify-anchor.ts).
 *
 * Needs no config or database, and no network without --rpc or --log, so an auditor can run it anywhere the package
 * is installed. Prints one line per check (`PASS name: detail` / `FAIL name: detail`) and then `verified` or
 * `NOT verified`. Exit codes: 0 all checks passed, 1 a check failed, 2 usage error (bad arguments, unreadable file,
 * a file that is not strict JSON: see readJsonFile).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  CONSISTENCY_FORMAT,
  bundleCheckpointText,
  parseStrictJson,
  statedPublicKey,
  StrictJsonError,
  verifyBundle,
  verifyBundleForward,
  verifyConsistencyDocument,
  type ConsistencyDocument,
  type LogProofBundle,
  type LogVerifyOptions,
  type ProofBundle,
  type VerificationCheck,
} from '../anchor/index.ts';
import { parseVerifierKey } from '../anchor/log/note.ts';

export const VERIFY_USAGE = `usage: anchorline verify <bundle.json> [--resource <resource.json>] [--raw <message file>] [--log-key <vkey>]
                         [--witness <vkey>]... [--witnesses-required <k>] [--forward <consistency.json>] [--rpc <url>]
       anchorline verify --consistency <consistency.json>
       anchorline verify --consistency <old> <new> (--proof <consistency.json> | --log <url>) [--log-key <vkey>]

Checks an anchorline proof bundle offline: leaf hash, inclusion in the log, the signed checkpoint and the anchor
(older anchorline-proof/1 bundles: their audit path, signed header chain and anchor).
  --resource            also check that the given FHIR resource version is the one the leaf commits to
  --raw                 also check that the file's bytes are the raw inbound message the leaf commits to
  --log-key             require the log key to be this verifier key (<origin>+<key id>+<base64>), from a source
                        you trust; --public-key <hex> does the same with a bare Ed25519 key (either format)
  --witness             a witness's cosignature/v1 verifier key; repeat for several
  --witnesses-required  cosignatures required from distinct --witness keys (default: all of them)
  --forward             a consistency document from the bundle's checkpoint to a newer one: the record is then
                        shown to be in the newer checkpoint too, without fetching it again
  --rpc                 also check the chain anchor on that JSON-RPC node: chain id, registry code, transaction,
                        Anchored event and registry state
  --consistency         check that a newer checkpoint extends an older one: a consistency document
                        (GET /log/consistency), or two checkpoints (signed notes, or bundles or documents holding
                        one) with the proof from --proof or fetched from the log at --log
Exit code 0 if every check passes, 1 if any fails, 2 for usage errors.
`;

/** Where verify writes; the process streams in the CLI. */
export interface VerifyOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: VerifyOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** A usage problem: reported on stderr with exit code 2. */
class UsageError extends Error {}

/** Runs `verify` with the arguments after the command name; returns the exit code. */
export async function runVerify(argv: string[], output: VerifyOutput = processOutput): Promise<number> {
  try {
    const { values, positionals } = parseCommandLine(argv);
    if (values.help) {
      output.out(VERIFY_USAGE);
      return 0;
    }
    if (values.rpc !== undefined && !/^https?:\/\/\S+$/.test(values.rpc)) throw new UsageError('--rpc must be an http(s) URL');
    if (values.log !== undefined && !/^https?:\/\/\S+$/.test(values.log)) throw new UsageError('--log must be an http(s) URL');
    if (values['public-key'] !== undefined && !/^[0-9a-fA-F]{64}$/.test(values['public-key'])) throw new UsageError('--public-key must be 64 hex digits');
    if (values['log-key'] !== undefined && !parseVerifierKey(values['log-key']).ok) throw new UsageError('--log-key must be a verifier key <origin>+<key id>+<base64>');
    const required = values['witnesses-required'] === undefined ? undefined : Number(values['witnesses-required']);
    if (required !== undefined && !(Number.isSafeInteger(required) && required >= 0 && /^\d+$/.test(values['witnesses-required']!))) throw new UsageError('--witnesses-required must be a whole number');
    const logOptions: LogVerifyOptions = {
      ...(values['log-key'] === undefined ? {} : { logKey: values['log-key'] }),
      ...(values.witness === undefined ? {} : { witnesses: values.witness }),
      ...(required === undefined ? {} : { witnessesRequired: required }),
    };
    const { checks, checked } = values.consistency ? { checks: await consistencyChecks(positionals, values, logOptions), checked: undefined } : await bundleChecks(positionals, values, logOptions);
    const pinned = values['public-key']?.toLowerCase();
    if (pinned !== undefined) checks.push(publicKeyCheck(checks, checked, pinned, Boolean(values.consistency)));
    const ok = checks.length > 0 && checks.every((check) => check.ok);
    for (const check of checks) output.out(`${check.ok ? 'PASS' : 'FAIL'} ${check.name}: ${check.detail}\n`);
    output.out(ok ? 'verified\n' : 'NOT verified\n');
    return ok ? 0 : 1;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`anchorline verify: ${error.message}\n\n${VERIFY_USAGE}`);
    return 2;
  }
}

type Values = ReturnType<typeof parseVerifyArgs>['values'];

/** The bundle's checks, and the bundle as read (for --public-key). */
async function bundleChecks(positionals: string[], values: Values, logOptions: LogVerifyOptions): Promise<{ checks: VerificationCheck[]; checked: unknown }> {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <bundle.json>' : 'expected exactly one bundle file');
  const bundle = readJsonFile(positionals[0]!, 'bundle');
  const options: LogVerifyOptions = {
    ...logOptions,
    ...(values.resource === undefined ? {} : { resource: readJsonFile(values.resource, 'resource') }),
    ...(values.raw === undefined ? {} : { raw: readBytes(values.raw, 'raw message') }),
  };
  const result = values.forward === undefined ? verifyBundle(bundle, options) : verifyBundleForward(bundle, readJsonFile(values.forward, 'consistency document'), options);
  const checks = [...result.checks];
  if (values.rpc !== undefined) {
    const formatOk = checks[0]?.name === 'bundle-format' && checks[0].ok;
    // viem is loaded only for --rpc: an offline check does not pay for it at start-up.
    const { verifyAnchorOnChain } = await import('../anchor/chain/verify-anchor.ts');
    if (formatOk) checks.push(...(await verifyAnchorOnChain(bundle as ProofBundle | LogProofBundle, values.rpc)));
    else checks.push({ name: 'chain', ok: false, detail: 'not checked: the bundle is malformed (see bundle-format)' });
  }
  return { checks, checked: bundle };
}

/** --consistency with a document, or with two checkpoints and the proof from --proof or --log. */
async function consistencyChecks(positionals: string[], values: Values, logOptions: LogVerifyOptions): Promise<VerificationCheck[]> {
  const { logKey, witnesses, witnessesRequired } = logOptions;
  const options = { ...(logKey === undefined ? {} : { logKey }), ...(witnesses === undefined ? {} : { witnesses }), ...(witnessesRequired === undefined ? {} : { witnessesRequired }) };
  if (positionals.length === 1) return verifyConsistencyDocument(readJsonFile(positionals[0]!, 'consistency document'), options).checks;
  if (positionals.length !== 2) throw new UsageError('--consistency takes a consistency document, or <old> and <new> checkpoints');
  const older = readCheckpointFile(positionals[0]!);
  const newer = readCheckpointFile(positionals[1]!);
  const key = logKey ?? older.logKey ?? newer.logKey;
  if (key === undefined) throw new UsageError('give --log-key: neither file names the log key');
  const oldSize = checkpointSize(older.note, positionals[0]!);
  const newSize = checkpointSize(newer.note, positionals[1]!);
  let proofDocument: unknown;
  if (values.proof !== undefined) proofDocument = readJsonFile(values.proof, 'consistency document');
  else if (values.log !== undefined) proofDocument = await fetchConsistency(values.log, oldSize, newSize);
  else throw new UsageError('give the proof with --proof <consistency.json> or --log <url>');
  const proof = isRecordWithProof(proofDocument) ? proofDocument.proof : undefined;
  if (proof === undefined) throw new UsageError('the proof file holds no proof array');
  const document: ConsistencyDocument = { format: CONSISTENCY_FORMAT, logKey: key, old: older.note, new: newer.note, proof };
  return verifyConsistencyDocument(document, { ...options, logKey: logKey ?? key }).checks;
}

/** A checkpoint note from a file: a signed note as text, or the checkpoint in a bundle, or the new one of a document. */
function readCheckpointFile(file: string): { note: string; logKey: string | undefined } {
  const text = decodeUtf8(readBytes(file, 'checkpoint'), file, 'checkpoint');
  if (!text.trimStart().startsWith('{')) return { note: text, logKey: undefined };
  const value = parseJsonText(text, file, 'checkpoint');
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const logKey = typeof record.logKey === 'string' ? record.logKey : undefined;
    if (typeof record.checkpoint === 'string') return { note: record.checkpoint, logKey };
    if (typeof record.new === 'string') return { note: record.new, logKey };
  }
  throw new UsageError(`${file} holds no checkpoint`);
}

function checkpointSize(note: string, file: string): number {
  const text = bundleCheckpointText(note);
  const size = text === undefined ? undefined : text.split('\n')[1];
  if (size === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(size)) throw new UsageError(`${file} does not hold a signed checkpoint`);
  return Number(size);
}

async function fetchConsistency(base: string, oldSize: number, newSize: number): Promise<unknown> {
  const url = `${base.replace(/\/+$/, '')}/log/consistency?old=${oldSize}&new=${newSize}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new UsageError(`cannot fetch the consistency proof from ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new UsageError(`the log answered ${response.status} for ${url}`);
  const text = await response.text();
  if (text.length > 65_536) throw new UsageError('the log answered more than 64 KiB');
  try {
    return parseStrictJson(text);
  } catch {
    throw new UsageError('the log answered something that is not strict JSON');
  }
}

function isRecordWithProof(value: unknown): value is { proof: string[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { proof?: unknown }).proof);
}

/** --public-key: the bare Ed25519 key of the log (in a /2 bundle's logKey) or of the header signer (/1). */
function publicKeyCheck(checks: VerificationCheck[], checked: unknown, pinned: string, consistency: boolean): VerificationCheck {
  const formatOk = checks[0]?.ok === true;
  if (!formatOk || consistency) return { name: 'public-key', ok: false, detail: consistency ? 'use --log-key with --consistency' : 'not checked: the bundle is malformed' };
  const stated = statedPublicKey(checked);
  return stated === pinned
    ? { name: 'public-key', ok: true, detail: 'the bundle is signed by the pinned key' }
    : { name: 'public-key', ok: false, detail: `the bundle names key ${stated ?? '(none)'}, not the pinned key` };
}

function parseCommandLine(argv: string[]): ReturnType<typeof parseVerifyArgs> {
  try {
    return parseVerifyArgs(argv);
  } catch (error) {
    // parseArgs messages name the option, not file contents.
    throw new UsageError((error as Error).message);
  }
}

function parseVerifyArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      resource: { type: 'string' },
      raw: { type: 'string' },
      rpc: { type: 'string' },
      'public-key': { type: 'string' },
      'log-key': { type: 'string' },
      witness: { type: 'string', multiple: true },
      'witnesses-required': { type: 'string' },
      forward: { type: 'string' },
      consistency: { type: 'boolean' },
      proof: { type: 'string' },
      log: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
}

function readBytes(file: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? 'read failed');
    throw new UsageError(`cannot read ${what} file ${file}: ${reason}`);
  }
}

/**
 * The parsed JSON in `file`, parsed losslessly and strictly (parseStrictJson, anchor/json.ts): a resource's `5.40`
 * must reach the resource hash as `5.40`, and `12345678901234567890` with all its digits; JSON.parse would hash 5.4
 * and a rounded integer, and a good resource would fail resource-hash. A text other readers could read differently
 * is refused with its reason: a member name twice in one object (whatever the values), a lone surrogate, anything
 * outside RFC 8259's grammar. Errors name the file, the rule and a character position, and quote at most a member
 * name: a parser's message could quote the text around the error, which in a resource file may be patient data.
 */
function readJsonFile(file: string, what: string): unknown {
  return parseJsonText(decodeUtf8(readBytes(file, what), file, what), file, what);
}

/** The text of `file`, parsed as readJsonFile describes. */
function parseJsonText(text: string, file: string, what: string): unknown {
  try {
    return parseStrictJson(text);
  } catch (error) {
    if (!(error instanceof StrictJsonError)) throw new UsageError(`${what} file ${file} is not valid JSON`);
    const kind = error.rule === 'syntax' ? 'is not valid JSON' : error.rule === 'too-deep' ? 'is refused' : 'is not valid I-JSON (RFC 7493)';
    throw new UsageError(`${what} file ${file} ${kind}: ${error.message}`);
  }
}

function decodeUtf8(bytes: Uint8Array, file: string, what: string): string {
  try {
    // Fatal, not replacing: a resource silently altered by U+FFFD substitution would fail resource-hash misleadingly,
    // and a surrogate encoded in UTF-8 (ED A0 80) is refused here as invalid UTF-8.
    // ignoreBOM false (the default) drops a UTF-8 byte order mark, which some editors write (RFC 8259 §8.1 lets a
    // parser ignore it); parseStrictJson itself refuses U+FEFF anywhere else.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${what} file ${file} is not valid UTF-8`);
  }
}
