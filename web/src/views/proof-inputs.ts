/**
 * What the proof verifier reads from the operator: texts that must be strict JSON, files that must be UTF-8, and the
 * keys the auditor trusts. Every key is read here before anything is verified, so that a mistyped key is reported as
 * a mistyped key and not as a failed check of an honest bundle.
 */
import {
  LOG_PROOF_FORMAT,
  parseStrictJson,
  statedPublicKey,
  StrictJsonError,
  stringifyJson,
  type LogVerifyOptions,
  type VerificationCheck,
} from '../../../anchor/index.ts';
import { cosignatureVerifierFromKey, ed25519NoteVerifierFromKey } from '../../../anchor/log/index.ts';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
/** A tree size as the log writes it on a checkpoint's second line: decimal, no leading zero, at most 2^53 - 1. */
const TREE_SIZE = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Text from the engine, indented for reading when it is strict JSON; as sent otherwise, so that verifying it shows
 * why it is refused rather than a lax re-reading of it (a repeated member would silently disappear).
 */
export function prettyOrAsSent(text: string): string {
  try {
    return stringifyJson(parseStrictJson(text), 2);
  } catch {
    return text;
  }
}

/** Why a pasted or loaded text is refused, as `anchorline verify` says it; never quotes a value. */
export function strictJsonProblem(error: unknown): string {
  if (!(error instanceof StrictJsonError)) return 'is not valid JSON';
  const kind = error.rule === 'syntax' ? 'is not valid JSON' : error.rule === 'too-deep' ? 'is refused' : 'is not valid I-JSON (RFC 7493)';
  return `${kind}: ${error.message}`;
}

/** A strict JSON value, or why the text named `what` is refused. */
export function readStrictJson(text: string, what: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  try {
    return { ok: true, value: parseStrictJson(text) };
  } catch (error) {
    return { ok: false, problem: `${what} ${strictJsonProblem(error)}.` };
  }
}

/**
 * A chosen file's text, decoded strictly as `anchorline verify` does: file.text() would replace invalid UTF-8 with
 * U+FFFD unseen. Undefined when no file is chosen.
 */
export async function readUtf8File(input: HTMLInputElement): Promise<{ ok: true; text: string } | { ok: false; problem: string } | undefined> {
  const file = input.files?.[0];
  if (!file) return undefined;
  const buffer = await file.arrayBuffer();
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(buffer) };
  } catch {
    return { ok: false, problem: `The file ${file.name} is not valid UTF-8.` };
  }
}

/** The Trust panel as typed. */
export interface TrustInput {
  /** A bare Ed25519 public key, hex: the /1 header signer, or the key inside a /2 log key. */
  publicKey: string;
  /** A log verifier key, <origin>+<key id>+<base64>. */
  logKey: string;
  /** cosignature/v1 verifier keys, one a line. */
  witnesses: string;
  /** Cosignatures required from distinct witness keys; empty means all of them. */
  witnessesRequired: string;
}

export interface Trust {
  /** Lowercase hex, when pinned. */
  publicKey: string | undefined;
  /** What verifyLogBundle, verifyConsistencyDocument and verifyBundleForward take; only what was given. */
  log: Pick<LogVerifyOptions, 'logKey' | 'witnesses' | 'witnessesRequired'>;
}

export function readTrust(input: TrustInput): { ok: true; trust: Trust } | { ok: false; problem: string } {
  const publicKey = input.publicKey.trim().toLowerCase();
  if (publicKey !== '' && !HEX_KEY.test(publicKey)) return { ok: false, problem: 'The pinned public key must be 64 hex digits.' };
  const logKey = input.logKey.trim();
  if (logKey !== '') {
    const parsed = ed25519NoteVerifierFromKey(logKey);
    if (!parsed.ok) return { ok: false, problem: `The pinned log key is not an Ed25519 verifier key (<origin>+<key id>+<base64>): ${parsed.reason}.` };
  }
  const witnesses = input.witnesses
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  for (const [i, key] of witnesses.entries()) {
    const parsed = cosignatureVerifierFromKey(key);
    if (!parsed.ok) return { ok: false, problem: `Witness key ${i + 1} is not a cosignature/v1 verifier key: ${parsed.reason}.` };
  }
  const requiredText = input.witnessesRequired.trim();
  let witnessesRequired: number | undefined;
  if (requiredText !== '') {
    if (!/^(0|[1-9][0-9]{0,3})$/.test(requiredText)) return { ok: false, problem: 'The number of cosignatures required must be a whole number.' };
    witnessesRequired = Number(requiredText);
    // A count no set of the given keys can meet would fail every checkpoint: say so instead.
    if (witnessesRequired > witnesses.length) return { ok: false, problem: `${witnessesRequired} cosignature(s) required, but ${witnesses.length} witness key(s) given.` };
  }
  return {
    ok: true,
    trust: {
      publicKey: publicKey === '' ? undefined : publicKey,
      log: {
        ...(logKey === '' ? {} : { logKey }),
        ...(witnesses.length === 0 ? {} : { witnesses }),
        ...(witnessesRequired === undefined ? {} : { witnessesRequired }),
      },
    },
  };
}

/**
 * The pinned-key check of `anchorline verify --public-key`: the bare Ed25519 key in the value's logKey (a /2 bundle
 * or a consistency document) or its publicKey (a /1 bundle) must be the pinned one.
 */
export function pinnedPublicKeyCheck(value: unknown, formatOk: boolean, pinned: string): VerificationCheck {
  if (!formatOk) return { name: 'public-key', ok: false, detail: 'not checked: the input is malformed' };
  const stated = statedPublicKey(value);
  return stated === pinned
    ? { name: 'public-key', ok: true, detail: 'signed by the pinned key' }
    : { name: 'public-key', ok: false, detail: `names key ${stated ?? '(none)'}, not the pinned key` };
}

/**
 * A /1 bundle has no log key and no checkpoint for witnesses to cosign. A pinned log key or witness keys are still
 * reported, failing: left out, they would read as checked.
 */
export function logTrustOnFormat1(trust: Trust): VerificationCheck[] {
  const checks: VerificationCheck[] = [];
  if (trust.log.logKey !== undefined) {
    checks.push({ name: 'log-key', ok: false, detail: 'not checked: an anchorline-proof/1 bundle names no log key; pin its signer as a public key (64 hex digits)' });
  }
  if (trust.log.witnesses !== undefined) {
    checks.push({ name: 'cosignatures', ok: false, detail: 'not checked: an anchorline-proof/1 bundle has no checkpoint for witnesses to cosign' });
  }
  return checks;
}

export function isLogBundle(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { format?: unknown }).format === LOG_PROOF_FORMAT;
}

/** A tree size typed or read from a checkpoint's second line, or undefined. */
export function treeSize(text: string | undefined): number | undefined {
  if (text === undefined || !TREE_SIZE.test(text)) return undefined;
  const size = Number(text);
  return Number.isSafeInteger(size) ? size : undefined;
}
