/**
 * `anchorline verify <bundle.json> [--resource resource.json] [--rpc URL]`: checks a proof bundle offline, and with
 * --rpc also its chain anchor against a node the auditor chooses (anchor/chain/verify-anchor.ts).
 *
 * Needs no config or database, and no network without --rpc, so an auditor can run it anywhere the package is
 * installed. Prints one line per check (`PASS name: detail` / `FAIL name: detail`) and then `verified` or `NOT verified`.
 * Exit codes: 0 all checks passed, 1 a check failed, 2 usage error (bad arguments, unreadable file, a file that is
 * not strict JSON: see readJsonFile).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseStrictJson, StrictJsonError, verifyBundle, type ProofBundle } from '../anchor/index.ts';

export const VERIFY_USAGE = `usage: anchorline verify <bundle.json> [--resource <resource.json>] [--raw <message file>] [--rpc <url>] [--public-key <hex>]

Checks an anchorline proof bundle offline: leaf hash, Merkle inclusion, signed header chain and anchor.
With --resource, also checks that the given FHIR resource version is the one the leaf commits to.
With --raw, also checks that the file's bytes are the raw inbound message the leaf commits to.
With --rpc, also checks the chain anchor on that JSON-RPC node: chain id, registry code, transaction,
Anchored event and registry state.
With --public-key, also requires the bundle to be signed by that Ed25519 key (hex), obtained from a
source you trust.
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
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <bundle.json>' : 'expected exactly one bundle file');
    const bundle = readJsonFile(positionals[0]!, 'bundle');
    const options = {
      ...(values.resource === undefined ? {} : { resource: readJsonFile(values.resource, 'resource') }),
      ...(values.raw === undefined ? {} : { raw: readBytes(values.raw, 'raw message') }),
    };
    if (values.rpc !== undefined && !/^https?:\/\/\S+$/.test(values.rpc)) throw new UsageError('--rpc must be an http(s) URL');
    if (values['public-key'] !== undefined && !/^[0-9a-fA-F]{64}$/.test(values['public-key'])) throw new UsageError('--public-key must be 64 hex digits');
    const result = verifyBundle(bundle, options);
    const checks = [...result.checks];
    const formatOk = checks[0]?.name === 'bundle-format' && checks[0].ok;
    const pinned = values['public-key']?.toLowerCase();
    if (pinned !== undefined) {
      const stated = formatOk ? (bundle as ProofBundle).publicKey.toLowerCase() : undefined;
      checks.push(
        stated === pinned
          ? { name: 'public-key', ok: true, detail: 'the bundle is signed by the pinned key' }
          : { name: 'public-key', ok: false, detail: stated === undefined ? 'not checked: the bundle is malformed' : `the bundle names key ${stated}, not the pinned key` },
      );
    }
    if (values.rpc !== undefined) {
      // viem is loaded only for --rpc: an offline check does not pay for it at start-up.
      const { verifyAnchorOnChain } = await import('../anchor/chain/verify-anchor.ts');
      if (formatOk) checks.push(...(await verifyAnchorOnChain(bundle as ProofBundle, values.rpc)));
      else checks.push({ name: 'chain', ok: false, detail: 'not checked: the bundle is malformed (see bundle-format)' });
    }
    const ok = checks.every((check) => check.ok);
    for (const check of checks) output.out(`${check.ok ? 'PASS' : 'FAIL'} ${check.name}: ${check.detail}\n`);
    output.out(ok ? 'verified\n' : 'NOT verified\n');
    return ok ? 0 : 1;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`anchorline verify: ${error.message}\n\n${VERIFY_USAGE}`);
    return 2;
  }
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
    options: { resource: { type: 'string' }, raw: { type: 'string' }, rpc: { type: 'string' }, 'public-key': { type: 'string' }, help: { type: 'boolean' } },
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
function readJsonFile(file: string, what: 'bundle' | 'resource'): unknown {
  const bytes = readBytes(file, what);
  let text: string;
  try {
    // Fatal, not replacing: a resource silently altered by U+FFFD substitution would fail resource-hash misleadingly,
    // and a surrogate encoded in UTF-8 (ED A0 80) is refused here as invalid UTF-8.
    // ignoreBOM false (the default) drops a UTF-8 byte order mark, which some editors write (RFC 8259 §8.1 lets a
    // parser ignore it); parseStrictJson itself refuses U+FEFF anywhere else.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${what} file ${file} is not valid UTF-8`);
  }
  try {
    return parseStrictJson(text);
  } catch (error) {
    if (!(error instanceof StrictJsonError)) throw new UsageError(`${what} file ${file} is not valid JSON`);
    const kind = error.rule === 'syntax' ? 'is not valid JSON' : error.rule === 'too-deep' ? 'is refused' : 'is not valid I-JSON (RFC 7493)';
    throw new UsageError(`${what} file ${file} ${kind}: ${error.message}`);
  }
}
