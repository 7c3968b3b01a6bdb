/**
 * `anchorline witness`: an independent witness of an anchorline log (C2SP tlog-witness in spirit), or with --monitor
 * a monitor. It keeps the last checkpoint it accepted and accepts a newer one only when the log proves that the newer
 * tree extends it; a witness then cosigns it (C2SP tlog-cosignature, cosignature/v1) and hands the cosignature to the
 * log, which serves it with the checkpoint and puts it into proof bundles. A log that shows two trees of one size
 * (the split view witnesses exist to catch), shrinks, or signs what its key did not, raises an alarm instead, and
 * nothing is cosigned.
 *
 *   anchorline witness keygen --name <name> [--out <file>]
 *   anchorline witness --log <url> --log-key <vkey> --key <file> --state <file> [--once] [--interval <s>] [--timeout <s>] [--no-submit]
 *   anchorline witness --monitor --log <url> --log-key <vkey> --state <file> [--once] [--interval <s>] [--timeout <s>]
 *
 * A ROUND. GET <log>/log/checkpoint, opened with the pinned log key (whose name is the log's origin), and GET <log>/log
 * for the checkpoint's number. Then, with M the size of the checkpoint in the state and N the new one's:
 *   no state yet     the checkpoint is accepted as it is: there is nothing to compare it with (trust on first use)
 *   N < M            ALARM shrink
 *   N = M            the same root and text, else ALARM fork
 *   N > M            the new checkpoint has a previous line, and names the state's checkpoint when the log numbers the
 *                    two consecutively (else ALARM previous); GET /log/consistency?old=M&new=N holds exactly the
 *                    state's text as its old checkpoint and the new text as its new one, and its proof verifies from
 *                    the state's root to the new root (else ALARM fork: the roots the proof is checked against are
 *                    the witness's own, never the document's)
 * A checkpoint note that does not open with the log key, or is outside anchorline's checkpoint grammar, is ALARM
 * signature. Checkpoint numbers (from GET /log) are unsigned: they can only add the previous check, never skip a
 * consistency proof. On an alarm the state stays as it was. Otherwise the state moves to the new checkpoint, and a
 * witness cosigns it and POSTs the cosigned note to <log>/log/cosignature. An unchanged checkpoint that does not yet
 * carry this witness's cosignature (a submission that failed) is cosigned again.
 *
 * STATE FILE (JSON, replaced atomically: temporary file, fsync, rename):
 *   { "format": "anchorline-witness-state/1", "logKey": <the pinned log key>, "size": <leaves>,
 *     "root": <base64 root>, "checkpointNumber": <the log's number for it, or null>, "text": <the checkpoint text> }
 * size and root must be the text's; a state written for another log key is refused.
 *
 * OUTPUT: one line per round on stdout, `OK size <n> root <base64> cosigned` / `OK size <n> unchanged`; alarms as
 * `ALARM <kind>: <detail>` and failures to reach or read the log as `ERROR <detail>` on stderr. Checkpoints hold no
 * patient data, but only sizes, hashes and key names are ever printed.
 *
 * EXIT CODES: 0 the checkpoint was checked (and cosigned), or the loop was stopped with no alarm; 1 the log could not
 * be reached or read, or refused the cosignature (--once); 2 usage error, unreadable key or state file; 3 an alarm
 * (--once, or at any round of a loop stopped by SIGTERM or SIGINT).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  base64ToBytes,
  bytesToBase64,
  checkpointHash,
  CONSISTENCY_FORMAT,
  generateSigningKey,
  openLogCheckpoint,
  parseLogCheckpoint,
  parseStrictJson,
  publicKeyFor,
  verifyConsistencyDocument,
  type ConsistencyDocument,
  type LogCheckpoint,
} from '../anchor/index.ts';
import {
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteVerifierFromKey,
  formatCosignerKey,
  formatSignatureLine,
  formatSignerKey,
  isValidKeyName,
  parseNote,
  parseSignerKey,
  verifyConsistencyProof,
  type NoteSigner,
  type NoteVerifier,
} from '../anchor/log/index.ts';

export const WITNESS_USAGE = `usage: anchorline witness keygen --name <name> [--out <file>]
       anchorline witness --log <url> --log-key <vkey> --key <file> --state <file> [options]
       anchorline witness --monitor --log <url> --log-key <vkey> --state <file> [options]

Watches an anchorline log: each round fetches its latest signed checkpoint and checks it against the last
one seen (kept in the state file): a tree never shrinks, one size has one root, and a larger tree comes with
a consistency proof from the old root. A witness then cosigns the checkpoint (cosignature/v1) and submits the
cosignature to the log; a monitor (--monitor) checks without a key. Anything inconsistent is reported as
"ALARM <kind>: ..." on stderr, the state is kept, and nothing is cosigned.

keygen           make a witness key: writes the signer key to --out (default witness.key, mode 0600, never
                 overwritten) and prints the verifier key the log operator adds to anchor.witnesses
--log <url>      the log's base URL (the engine's HTTP API), e.g. https://hub.example
--log-key <vkey> the log's verifier key (GET /log gives it; pin one obtained from a source you trust)
--key <file>     the witness's signer key file (from keygen)
--state <file>   where the last accepted checkpoint is kept (created on the first round)
--monitor        check only: no key, no cosignature
--once           one round, then exit
--interval <s>   seconds between rounds (default ${60})
--timeout <s>    seconds each HTTP request may take (default ${10})
--no-submit      cosign but do not POST: the cosignature line is printed instead
Exit code 0 checked, 1 log unreachable or cosignature refused, 2 usage error, 3 alarm.
`;

/** Where the witness writes, what stops its loop, and its HTTP client: the process's in the CLI. */
export interface WitnessIo {
  out(text: string): void;
  err(text: string): void;
  /** Ends loop mode after the round in progress; without it the loop stops on SIGTERM or SIGINT. */
  stop?: AbortSignal;
  /** Default the global fetch. */
  fetch?: typeof fetch;
}

const processIo: WitnessIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

const STATE_FORMAT = 'anchorline-witness-state/1';
/** Largest response read from the log: a checkpoint note with 100 cosignatures, or a consistency document, is far less. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_SECONDS = 10;
const DEFAULT_INTERVAL_SECONDS = 60;
/** Longest server error text repeated in a report. */
const MAX_DETAIL_CHARS = 300;

type AlarmKind = 'fork' | 'shrink' | 'signature' | 'previous';

/** The log contradicts itself or what the witness saw before: reported, the state kept, nothing cosigned. */
class Alarm extends Error {
  readonly kind: AlarmKind;
  constructor(kind: AlarmKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** The log could not be reached, answered with an error, or sent something that is not what the route serves. */
class LogUnavailable extends Error {}

/** Bad arguments: reported with the usage text, exit code 2. */
class UsageError extends Error {}

/** A key or state file that cannot be used: exit code 2. */
class FileError extends Error {}

/** What the state file holds: the last checkpoint accepted. */
interface WitnessState {
  size: number;
  root: string;
  checkpointNumber: number | null;
  text: string;
}

/** A checkpoint that opened with the log key, as fetched this round. */
interface SeenCheckpoint {
  note: string;
  text: string;
  checkpoint: LogCheckpoint;
  root: string;
}

interface Cosigner {
  signer: NoteSigner;
  verifier: NoteVerifier;
  /** Its cosignature/v1 verifier key, for messages to the operator. */
  vkey: string;
}

interface Witness {
  client: LogClient;
  log: NoteVerifier;
  logKey: string;
  statePath: string;
  state: WitnessState | undefined;
  /** Undefined for a monitor. */
  cosigner: Cosigner | undefined;
  submit: boolean;
}

/** Runs `witness` with the arguments after the command name; returns the exit code. */
export async function runWitness(argv: string[], io: WitnessIo = processIo): Promise<number> {
  if (argv[0] === 'keygen') return runKeygen(argv.slice(1), io);
  let witness: Witness;
  let once: boolean;
  let intervalMs: number;
  try {
    const values = parseCommandLine(argv);
    if (values.help) {
      io.out(WITNESS_USAGE);
      return 0;
    }
    ({ witness, once, intervalMs } = setUp(values, io));
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`anchorline witness: ${error.message}\n\n${WITNESS_USAGE}`);
      return 2;
    }
    if (error instanceof FileError) {
      io.err(`anchorline witness: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (once) {
    const outcome = await runRound(witness);
    report(outcome, io, undefined);
    return outcome.kind === 'ok' ? 0 : outcome.kind === 'alarm' ? 3 : 1;
  }
  return runLoop(witness, intervalMs, io);
}

async function runLoop(witness: Witness, intervalMs: number, io: WitnessIo): Promise<number> {
  let stop = io.stop;
  let release = (): void => undefined;
  if (stop === undefined) {
    const controller = new AbortController();
    const onSignal = (): void => controller.abort();
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    release = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
    stop = controller.signal;
  }
  let alarmed = false;
  try {
    while (!stop.aborted) {
      const outcome = await runRound(witness);
      if (outcome.kind === 'alarm') alarmed = true;
      report(outcome, io, intervalMs);
      await pause(intervalMs, stop);
    }
  } finally {
    release();
  }
  return alarmed ? 3 : 0;
}

type Outcome = { kind: 'ok'; line: string } | { kind: 'alarm'; alarm: AlarmKind; detail: string } | { kind: 'error'; detail: string };

async function runRound(witness: Witness): Promise<Outcome> {
  try {
    return { kind: 'ok', line: await round(witness) };
  } catch (error) {
    if (error instanceof Alarm) return { kind: 'alarm', alarm: error.kind, detail: error.message };
    // Anything else, a failure to write the state included, is retried next round: nothing was cosigned.
    return { kind: 'error', detail: (error as Error).message ?? String(error) };
  }
}

function report(outcome: Outcome, io: WitnessIo, intervalMs: number | undefined): void {
  if (outcome.kind === 'ok') io.out(`${outcome.line}\n`);
  else if (outcome.kind === 'alarm') io.err(`ALARM ${outcome.alarm}: ${outcome.detail}\n`);
  else io.err(`ERROR ${outcome.detail}${intervalMs === undefined ? '' : `; trying again in ${intervalMs / 1000} s`}\n`);
}

/** One round, by the rules in this file's header; returns the OK line or throws Alarm / LogUnavailable. */
async function round(witness: Witness): Promise<string> {
  const seen = openSeen(await witness.client.get('/log/checkpoint'), witness.log);
  const size = seen.checkpoint.size;
  const number = await checkpointNumber(witness.client, size);
  const last = witness.state;
  if (last !== undefined) {
    if (size < last.size) throw new Alarm('shrink', `the log's latest checkpoint has ${size} leaves, but it showed ${last.size} before`);
    if (size === last.size) {
      if (seen.root !== last.root) throw new Alarm('fork', `two checkpoints of ${size} leaves with different roots: ${last.root} before, ${seen.root} now`);
      if (seen.text !== last.text) throw new Alarm('fork', `the log signed two different checkpoints of ${size} leaves (root ${seen.root})`);
    } else {
      checkPrevious(last, seen, number);
      await checkConsistency(witness, last, seen);
    }
  }
  const unchanged = last?.size === size;
  // A number once recorded for a checkpoint is kept: the log's word on it is not signed, so it is not revised.
  const next: WitnessState = { size, root: seen.root, checkpointNumber: unchanged && last.checkpointNumber !== null ? last.checkpointNumber : number, text: seen.text };
  const moved = !unchanged || last.checkpointNumber !== next.checkpointNumber;
  const firstSeen = last === undefined ? ' (the first checkpoint this state holds)' : '';
  const cosigner = witness.cosigner;
  if (cosigner === undefined) {
    if (moved) saveState(witness, next);
    return unchanged ? `OK size ${size} unchanged` : `OK size ${size} root ${seen.root} verified${firstSeen}`;
  }
  if (unchanged && (!witness.submit || carriesCosignature(seen, cosigner.verifier))) {
    if (moved) saveState(witness, next);
    return `OK size ${size} unchanged`;
  }
  const line = cosignatureLine(seen.text, cosigner.signer);
  // The state is written before the cosignature leaves: a witness that crashed after releasing it and before
  // remembering the checkpoint could later cosign a different tree of the same size.
  if (moved) saveState(witness, next);
  if (!witness.submit) return `OK size ${size} root ${seen.root} cosigned, not submitted: ${line.trimEnd()}`;
  await submitCosignature(witness, cosigner, `${seen.text}\n${line}`);
  return `OK size ${size} root ${seen.root} cosigned${firstSeen}`;
}

function openSeen(note: string, log: NoteVerifier): SeenCheckpoint {
  if (!parseNote(note).ok) throw new LogUnavailable('GET /log/checkpoint did not answer with a signed note');
  const opened = openLogCheckpoint(note, log);
  if (!opened.ok) throw new Alarm('signature', `the latest checkpoint does not open with the log key ${log.name}: ${opened.reason}`);
  return { note, text: opened.value.text, checkpoint: opened.value.checkpoint, root: bytesToBase64(opened.value.checkpoint.rootHash) };
}

/** The log's number for the checkpoint of `size`, when GET /log still describes that checkpoint; else null. */
async function checkpointNumber(client: LogClient, size: number): Promise<number | null> {
  try {
    const info = parseStrictJson(await client.get('/log'));
    if (isRecord(info) && info.treeSize === size && Number.isSafeInteger(info.checkpoint)) return info.checkpoint as number;
  } catch {
    // The number only adds a check; a round does not fail for want of it.
  }
  return null;
}

function checkPrevious(last: WitnessState, seen: SeenCheckpoint, number: number | null): void {
  const previous = seen.checkpoint.previous;
  const size = seen.checkpoint.size;
  if (previous === undefined) {
    throw new Alarm('previous', `the ${size}-leaf checkpoint names no previous checkpoint, as only a log's first may, but the log showed one of ${last.size} leaves before`);
  }
  const expected = bytesToBase64(checkpointHash(last.text));
  if (bytesToBase64(previous) === expected) return;
  if (number !== null && last.checkpointNumber !== null && number === last.checkpointNumber + 1) {
    throw new Alarm(
      'previous',
      `checkpoint ${number} (${size} leaves) follows checkpoint ${last.checkpointNumber} (${last.size} leaves), but its previous line names ${bytesToBase64(previous)}, not ${expected}`,
    );
  }
}

async function checkConsistency(witness: Witness, last: WitnessState, seen: SeenCheckpoint): Promise<void> {
  const size = seen.checkpoint.size;
  const body = await witness.client.get(`/log/consistency?old=${last.size}&new=${size}`);
  let doc: unknown;
  try {
    doc = parseStrictJson(body);
  } catch {
    throw new LogUnavailable('GET /log/consistency did not answer with JSON');
  }
  // The document's own verdict is not the witness's: only its shape is taken from it.
  const format = verifyConsistencyDocument(doc).checks[0];
  if (format?.name !== 'consistency-format' || !format.ok) throw new LogUnavailable(`GET /log/consistency did not answer with ${CONSISTENCY_FORMAT}: ${format?.detail ?? 'unreadable'}`);
  const { old: oldNote, new: newNote, proof } = doc as ConsistencyDocument;
  const older = openLogCheckpoint(oldNote, witness.log);
  const newer = openLogCheckpoint(newNote, witness.log);
  if (!older.ok) throw new Alarm('signature', `the consistency proof's ${last.size}-leaf checkpoint does not open with the log key: ${older.reason}`);
  if (!newer.ok) throw new Alarm('signature', `the consistency proof's ${size}-leaf checkpoint does not open with the log key: ${newer.reason}`);
  if (older.value.text !== last.text) throw new Alarm('fork', `the log now serves another checkpoint of ${last.size} leaves than the one it showed before (root ${last.root})`);
  if (newer.value.text !== seen.text) throw new Alarm('fork', `the log serves two different checkpoints of ${size} leaves`);
  const verdict = verifyConsistencyProof(last.size, size, proof.map(base64ToBytes), base64ToBytes(last.root), seen.checkpoint.rootHash);
  if (!verdict.ok) throw new Alarm('fork', `the ${size}-leaf tree (root ${seen.root}) is not proven to extend the ${last.size}-leaf tree (root ${last.root}): ${verdict.reason}`);
}

/** Whether the fetched note already carries a valid cosignature by this witness. */
function carriesCosignature(seen: SeenCheckpoint, verifier: NoteVerifier): boolean {
  const parsed = parseNote(seen.note);
  if (!parsed.ok) return false;
  const text = new TextEncoder().encode(seen.text);
  return parsed.value.signatures.some((s) => s.name === verifier.name && s.keyId === verifier.keyId && verifier.verify(text, s.signature));
}

/** The cosignature/v1 signature line over `text`, newline included. */
function cosignatureLine(text: string, signer: NoteSigner): string {
  return formatSignatureLine({ name: signer.name, keyId: signer.keyId, signature: signer.sign(new TextEncoder().encode(text)) });
}

async function submitCosignature(witness: Witness, cosigner: Cosigner, note: string): Promise<void> {
  try {
    await witness.client.post('/log/cosignature', note);
  } catch (error) {
    if (error instanceof HttpRefusal && error.status === 403) {
      throw new LogUnavailable(`${error.message}; the log operator must add this witness's verifier key ${cosigner.vkey} to anchor.witnesses`);
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up: arguments, key, state

interface WitnessValues {
  log?: string;
  'log-key'?: string;
  key?: string;
  state?: string;
  monitor?: boolean;
  once?: boolean;
  interval?: string;
  timeout?: string;
  submit?: boolean;
  'no-submit'?: boolean;
  help?: boolean;
}

function parseCommandLine(argv: string[]): WitnessValues {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        log: { type: 'string' },
        'log-key': { type: 'string' },
        key: { type: 'string' },
        state: { type: 'string' },
        monitor: { type: 'boolean' },
        once: { type: 'boolean' },
        interval: { type: 'string' },
        timeout: { type: 'string' },
        submit: { type: 'boolean' },
        'no-submit': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}: the only subcommand is keygen`);
    return values;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // parseArgs messages name the option, never a value that could be a secret.
    throw new UsageError((error as Error).message);
  }
}

function setUp(values: WitnessValues, io: WitnessIo): { witness: Witness; once: boolean; intervalMs: number } {
  if (values.log === undefined) throw new UsageError('--log <url> is required');
  if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(values.log)) throw new UsageError('--log must be an http(s) URL without query or fragment');
  if (values['log-key'] === undefined) throw new UsageError('--log-key <vkey> is required');
  const log = ed25519NoteVerifierFromKey(values['log-key']);
  if (!log.ok) throw new UsageError(`--log-key is not an Ed25519 verifier key: ${log.reason}`);
  if (values.state === undefined) throw new UsageError('--state <file> is required');
  if (values.submit && values['no-submit']) throw new UsageError('--submit and --no-submit contradict each other');
  if (values.monitor && (values.key !== undefined || values.submit || values['no-submit'])) throw new UsageError('a monitor (--monitor) takes no --key and cosigns nothing');
  if (!values.monitor && values.key === undefined) throw new UsageError('--key <file> is required (or --monitor to check without cosigning)');
  const timeoutMs = seconds(values.timeout, '--timeout', DEFAULT_TIMEOUT_SECONDS);
  const intervalMs = seconds(values.interval, '--interval', DEFAULT_INTERVAL_SECONDS);
  const witness: Witness = {
    client: logClient(values.log.replace(/\/+$/, ''), timeoutMs, io.fetch ?? fetch),
    log: log.value,
    logKey: values['log-key'],
    statePath: values.state,
    state: loadState(values.state, values['log-key'], log.value.name),
    cosigner: values.key === undefined ? undefined : loadCosigner(values.key, io),
    submit: !values['no-submit'],
  };
  return { witness, once: values.once === true, intervalMs };
}

function seconds(text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback * 1000;
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value > 0) || value > 86_400) throw new UsageError(`${option} must be a number of seconds above 0, at most 86400`);
  return Math.round(value * 1000);
}

function loadCosigner(file: string, io: WitnessIo): Cosigner {
  const text = readTextFile(file, 'key');
  const parsed = parseSignerKey(text.trim());
  // The reason names the rule broken, never the key's characters.
  if (!parsed.ok) throw new FileError(`key file ${file} does not hold a signer key (anchorline witness keygen writes one): ${parsed.reason}`);
  if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) io.err(`anchorline witness: warning: key file ${file} can be read by other users (chmod 600 it)\n`);
  const { name, privateKey } = parsed.value;
  const publicKey = publicKeyFor(privateKey);
  return { signer: ed25519Cosigner(name, privateKey), verifier: ed25519CosignatureVerifier(name, publicKey), vkey: formatCosignerKey(name, publicKey) };
}

function loadState(file: string, logKey: string, origin: string): WitnessState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FileError(`cannot read state file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}`);
  }
  const problem = (reason: string): FileError => new FileError(`state file ${file} is not a witness state: ${reason}`);
  let value: unknown;
  try {
    value = parseStrictJson(text);
  } catch {
    throw problem('not JSON');
  }
  if (!isRecord(value)) throw problem('not a JSON object');
  const keys = Object.keys(value).sort().join(',');
  if (keys !== 'checkpointNumber,format,logKey,root,size,text') throw problem('it must have exactly format, logKey, size, root, checkpointNumber and text');
  if (value.format !== STATE_FORMAT) throw problem(`format is not "${STATE_FORMAT}"`);
  if (value.logKey !== logKey) throw new FileError(`state file ${file} belongs to another log key than --log-key`);
  if (typeof value.text !== 'string') throw problem('text is not a string');
  const checkpoint = parseLogCheckpoint(value.text);
  if (!checkpoint.ok) throw problem(`text is not a checkpoint: ${checkpoint.reason}`);
  if (checkpoint.value.origin !== origin) throw problem("text is a checkpoint of another origin than the log key's name");
  if (value.size !== checkpoint.value.size || value.root !== bytesToBase64(checkpoint.value.rootHash)) throw problem("size and root are not the text's");
  const number = value.checkpointNumber;
  if (number !== null && !(Number.isSafeInteger(number) && (number as number) >= 1)) throw problem('checkpointNumber is neither null nor a positive integer');
  return { size: checkpoint.value.size, root: value.root, checkpointNumber: number as number | null, text: value.text };
}

/** Replaces the state file atomically, and only then the state in memory. */
function saveState(witness: Witness, state: WitnessState): void {
  const json = `${JSON.stringify({ format: STATE_FORMAT, logKey: witness.logKey, size: state.size, root: state.root, checkpointNumber: state.checkpointNumber, text: state.text }, null, 2)}\n`;
  const temporary = path.join(path.dirname(witness.statePath), `.${path.basename(witness.statePath)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(temporary, 'wx', 0o644);
    try {
      writeSync(fd, json);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, witness.statePath);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created, or already renamed.
    }
    throw new Error(`cannot write state file ${witness.statePath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  // The rename is durable once the directory is; where a directory cannot be opened for fsync, the rename stands.
  try {
    const dir = openSync(path.dirname(witness.statePath), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Best effort.
  }
  witness.state = state;
}

function readTextFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? 'read failed');
    throw new FileError(`cannot read ${what} file ${file}: ${reason}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// keygen

async function runKeygen(argv: string[], io: WitnessIo): Promise<number> {
  let values: { name?: string; out?: string; help?: boolean };
  try {
    const parsed = parseArgs({ args: argv, allowPositionals: false, strict: true, options: { name: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' } } });
    values = parsed.values;
    if (values.help) {
      io.out(WITNESS_USAGE);
      return 0;
    }
    if (values.name === undefined) throw new UsageError('keygen needs --name <name>, the name the cosignatures carry (e.g. witness.example.org/w1)');
    if (!isValidKeyName(values.name)) throw new UsageError('--name must be non-empty, with no space or "+"');
  } catch (error) {
    io.err(`anchorline witness: ${(error as Error).message}\n\n${WITNESS_USAGE}`);
    return 2;
  }
  const name = values.name;
  const file = values.out ?? 'witness.key';
  const { privateKey, publicKey } = generateSigningKey();
  try {
    // 'wx': a witness key is never overwritten; losing one loses the witness's identity with every log it serves.
    writeFileSync(file, `${formatSignerKey(name, privateKey)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    io.err(`anchorline witness: cannot write key file ${file}: ${code === 'EEXIST' ? 'it exists, and a key is never overwritten' : (code ?? 'write failed')}\n`);
    return 1;
  }
  io.out(`${formatCosignerKey(name, publicKey)}\n`);
  io.err(`anchorline witness: signer key written to ${file} (mode 0600: keep it secret); the log operator adds the verifier key above to anchor.witnesses\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

interface LogClient {
  get(pathAndQuery: string): Promise<string>;
  post(pathAndQuery: string, text: string): Promise<string>;
}

/** A non-2xx answer. */
class HttpRefusal extends LogUnavailable {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Requests to the log, each with a deadline and a cap on the answer's size; every failure is a LogUnavailable. */
function logClient(baseUrl: string, timeoutMs: number, fetchFn: typeof fetch): LogClient {
  const send = async (method: 'GET' | 'POST', pathAndQuery: string, body?: string): Promise<string> => {
    const what = `${method} ${pathAndQuery.split('?')[0]}`;
    try {
      const response = await fetchFn(`${baseUrl}${pathAndQuery}`, {
        method,
        // A witness talks to the URL it was given: a redirect elsewhere is refused, not followed.
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
        headers: body === undefined ? { accept: 'text/plain, application/json' } : { 'content-type': 'text/plain; charset=utf-8', accept: 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
      const text = await readCapped(response, what);
      if (response.status < 200 || response.status > 299) {
        throw new HttpRefusal(response.status, `${what} answered HTTP ${response.status}${errorDetail(response, text)}`);
      }
      return text;
    } catch (error) {
      if (error instanceof LogUnavailable) throw error;
      const name = (error as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') throw new LogUnavailable(`${what}: no answer within ${timeoutMs / 1000} s`);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new LogUnavailable(`${what} to ${baseUrl} failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
    }
  };
  return { get: (p) => send('GET', p), post: (p, text) => send('POST', p, text) };
}

/** The body as UTF-8 text, read no further than MAX_RESPONSE_BYTES. */
async function readCapped(response: Response, what: string): Promise<string> {
  const tooLarge = (): LogUnavailable => new LogUnavailable(`${what}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    const reader = response.body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > MAX_RESPONSE_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new LogUnavailable(`${what}: the answer is not UTF-8`);
  }
}

/** The engine's error code and text from an error answer (an OperationOutcome), shortened and on one line. */
function errorDetail(response: Response, text: string): string {
  const code = response.headers.get('x-anchorline-error');
  let message: unknown;
  try {
    const outcome = JSON.parse(text) as { issue?: Array<{ details?: { text?: unknown } }> };
    message = outcome.issue?.[0]?.details?.text;
  } catch {
    message = undefined;
  }
  const clean = typeof message === 'string' ? message.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, MAX_DETAIL_CHARS) : '';
  return `${code ? ` ${code}` : ''}${clean ? `: ${clean}` : ''}`;
}
