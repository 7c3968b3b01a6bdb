/**
 * `anchorline witness` against a real engine (embedded PostgreSQL, real HTTP): a witness key made by keygen and
 * configured in anchor.witnesses cosigns the log's checkpoints, the engine serves the cosignatures and proof bundles
 * carry them; later checkpoints are cosigned only after a consistency proof from the witness's own state; a fork
 * (in the state, or in the engine's stored hashes), a shrink, a broken previous link and a foreign log key are
 * alarms that cosign nothing and keep the state; an unconfigured key is refused by the engine; a monitor never
 * POSTs. The command runs in-process; one test runs the real CLI to prove the dispatch and the SIGTERM exit.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToBase64, bytesToHex, checkpointHash, formatLogCheckpoint, hexToBytes, openLogCheckpoint, parseLogCheckpoint, publicKeyFor, verifyLogBundle } from '../../anchor/index.ts';
import {
  cosignatureVerifierFromKey,
  ed25519NoteSigner,
  ed25519NoteVerifierFromKey,
  formatCosignerKey,
  formatVerifierKey,
  parseSignerKey,
  signNote,
  SIGNATURE_TYPE_ED25519,
  type NoteVerifier,
} from '../../anchor/log/index.ts';
import { runWitness, type WitnessIo } from '../../cli/witness.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WITNESS_NAME = 'witness.test/w1';

let t: TestEngine;
let dir: string;
let keyFile: string;
let witnessKey: string;
let witnessVerifier: NoteVerifier;
let logKey: string;
let logVerifier: NoteVerifier;
/** The state file of the configured witness, carried from test to test as the log grows. */
let stateFile: string;
let firstPatientId: string;

interface WitnessRun {
  code: number;
  stdout: string;
  stderr: string;
  /** "METHOD /path?query" of every request the witness made. */
  requests: string[];
}

/** Runs the command in-process, recording its output and every request it makes (passed on to the real engine). */
async function witness(args: string[], extra: Partial<WitnessIo> = {}): Promise<WitnessRun> {
  const out: string[] = [];
  const err: string[] = [];
  const requests: string[] = [];
  const recordingFetch: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    requests.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search}`);
    return fetch(input, init);
  };
  const code = await runWitness(args, { out: (text) => out.push(text), err: (text) => err.push(text), fetch: recordingFetch, ...extra });
  return { code, stdout: out.join(''), stderr: err.join(''), requests };
}

function witnessArgs(state: string, ...more: string[]): string[] {
  return ['--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', state, '--once', ...more];
}

async function logInfo(): Promise<{ treeSize: number; checkpoint: number; logKey: string }> {
  return (await (await fetch(`${t.httpUrl}/log`)).json()) as { treeSize: number; checkpoint: number; logKey: string };
}

async function latestNote(): Promise<string> {
  return (await fetch(`${t.httpUrl}/log/checkpoint`)).text();
}

async function cosignatureRows(treeSize: number): Promise<string[]> {
  const result = await t.pool.query<{ witness: string }>('SELECT witness FROM log_cosignature WHERE tree_size = $1 ORDER BY witness', [treeSize]);
  return result.rows.map((row) => row.witness);
}

let messages = 0;
/**
 * Sends one ADT message and waits until its Patient version is in a checkpoint and no leaf waits outside the log,
 * so that the latest checkpoint stays the latest until the next message. Returns the Patient's id and the log's size.
 */
async function admitMessage(): Promise<{ patientId: string; size: number }> {
  messages += 1;
  const mrn = `WIT${messages}`;
  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: `WITNESS-${messages}`, mrn, family: 'Yoon', given: 'Ha' }));
  await client.close();
  const patientId = await eventually(async () => {
    const response = await fetch(`${t.httpUrl}/fhir/Patient?identifier=${mrn}`, { headers: authHeaders() });
    const body = (await response.json()) as { entry?: Array<{ resource: { id: string } }> };
    return body.entry?.[0]?.resource.id;
  }, 20_000, `Patient ${mrn}`);
  await eventually(async () => (await fetch(`${t.httpUrl}/proofs/Patient/${patientId}/_history/1`, { headers: authHeaders() })).status === 200, 20_000, `proof of ${mrn}`);
  await eventually(async () => {
    const waiting = await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_leaf WHERE batch_number IS NULL');
    return waiting.rows[0]!.n === 0;
  }, 20_000, 'every leaf in a checkpoint');
  return { patientId, size: (await logInfo()).treeSize };
}

interface StateFile {
  format: string;
  logKey: string;
  size: number;
  root: string;
  checkpointNumber: number | null;
  text: string;
}

function readState(file: string): StateFile {
  return JSON.parse(readFileSync(file, 'utf8')) as StateFile;
}

/** The state a witness keeps after accepting the checkpoint with this text and number. */
function stateOf(text: string, checkpointNumber: number): StateFile {
  const parsed = parseLogCheckpoint(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return { format: 'anchorline-witness-state/1', logKey, size: parsed.value.size, root: bytesToBase64(parsed.value.rootHash), checkpointNumber, text };
}

/**
 * A state file holding the log's latest checkpoint, with its size or root changed consistently in the fields and
 * in the text: what a witness would hold had the log shown it another tree.
 */
async function editedState(name: string, change: { size?: number; root?: string }): Promise<{ file: string; latest: StateFile }> {
  const opened = openLogCheckpoint(await latestNote(), logVerifier);
  if (!opened.ok) throw new Error(opened.reason);
  const latest = stateOf(opened.value.text, (await logInfo()).checkpoint);
  const lines = latest.text.split('\n');
  if (change.size !== undefined) lines[1] = String(change.size);
  if (change.root !== undefined) lines[2] = change.root;
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ ...latest, size: change.size ?? latest.size, root: change.root ?? latest.root, text: lines.join('\n') }));
  return { file, latest };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'anchorline-witness-'));
  keyFile = join(dir, 'witness.key');
  stateFile = join(dir, 'witness.state');
  const keygen = await witness(['keygen', '--name', WITNESS_NAME, '--out', keyFile]);
  expect(keygen.code, keygen.stderr).toBe(0);
  witnessKey = keygen.stdout.trim();
  const verifier = cosignatureVerifierFromKey(witnessKey);
  if (!verifier.ok) throw new Error(verifier.reason);
  witnessVerifier = verifier.value;
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200, witnesses: [witnessKey] } } });
  firstPatientId = (await admitMessage()).patientId;
  logKey = (await logInfo()).logKey;
  const log = ed25519NoteVerifierFromKey(logKey);
  if (!log.ok) throw new Error(log.reason);
  logVerifier = log.value;
});

afterAll(async () => {
  await t?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('anchorline witness keygen', () => {
  it('writes a signer key (mode 0600, never overwritten) and prints its cosignature/v1 verifier key', async () => {
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const signer = parseSignerKey(readFileSync(keyFile, 'utf8').trim());
    expect(signer.ok).toBe(true);
    if (!signer.ok) return;
    expect(signer.value.name).toBe(WITNESS_NAME);
    expect(witnessKey).toBe(formatCosignerKey(WITNESS_NAME, publicKeyFor(signer.value.privateKey)));
    expect(witnessKey.startsWith(`${WITNESS_NAME}+`)).toBe(true);

    const before = readFileSync(keyFile, 'utf8');
    const again = await witness(['keygen', '--name', WITNESS_NAME, '--out', keyFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('a key is never overwritten');
    expect(readFileSync(keyFile, 'utf8')).toBe(before);
    const badName = await witness(['keygen', '--name', 'two words', '--out', join(dir, 'bad.key')]);
    expect(badName.code).toBe(2);
    expect(existsSync(join(dir, 'bad.key'))).toBe(false);
  });
});

describe('anchorline witness', () => {
  it('cosigns the latest checkpoint; the engine serves the cosignature and proof bundles carry it', async () => {
    const { treeSize, checkpoint } = await logInfo();
    const run = await witness(witnessArgs(stateFile));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^OK size ${treeSize} root [A-Za-z0-9+/]{43}= cosigned`));
    expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(run.requests).toContain('POST /log/cosignature');

    const note = await latestNote();
    const opened = openLogCheckpoint(note, logVerifier, [witnessVerifier]);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.value.cosigners).toEqual([`${witnessVerifier.name}+${witnessVerifier.keyId.toString(16).padStart(8, '0')}`]);
    expect(await cosignatureRows(treeSize)).toHaveLength(1);
    const state = readState(stateFile);
    expect(state).toEqual({
      format: 'anchorline-witness-state/1',
      logKey,
      size: treeSize,
      root: bytesToBase64(opened.value.checkpoint.rootHash),
      checkpointNumber: checkpoint,
      text: opened.value.text,
    });

    const response = await fetch(`${t.httpUrl}/proofs/Patient/${firstPatientId}/_history/1?checkpoint=${treeSize}`, { headers: authHeaders() });
    expect(response.status).toBe(200);
    const bundle = (await response.json()) as { checkpoint: string };
    const verified = verifyLogBundle(bundle, { witnesses: [witnessKey], logKey });
    expect(verified.checks.filter((c) => !c.ok)).toEqual([]);
    expect(verified.checks.find((c) => c.name === 'cosignatures')?.ok).toBe(true);

    // Nothing new: nothing to cosign again, nothing sent.
    const unchanged = await witness(witnessArgs(stateFile));
    expect(unchanged.code).toBe(0);
    expect(unchanged.stdout).toBe(`OK size ${treeSize} unchanged\n`);
    expect(unchanged.requests.every((r) => r.startsWith('GET '))).toBe(true);
  });

  it('checks consistency from its own state before cosigning a larger checkpoint', async () => {
    const old = readState(stateFile);
    const { size } = await admitMessage();
    expect(size).toBeGreaterThan(old.size);
    const run = await witness(witnessArgs(stateFile));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^OK size ${size} root \\S+ cosigned\\n$`));
    expect(run.requests).toEqual(['GET /log/checkpoint', 'GET /log', `GET /log/consistency?old=${old.size}&new=${size}`, 'POST /log/cosignature']);
    expect(readState(stateFile).size).toBe(size);
    expect(await cosignatureRows(size)).toHaveLength(1);
    expect(openLogCheckpoint(await latestNote(), logVerifier, [witnessVerifier]).ok).toBe(true);
  });

  it('raises ALARM previous when the next checkpoint does not name the one before, and cosigns nothing', async () => {
    const { size } = await admitMessage();
    const { checkpoint } = await logInfo();
    // A witness that accepted the checkpoint just before the latest (one message can make more than one checkpoint,
    // so the state is taken from the log rather than from the last run).
    const before = (await t.pool.query<{ text: string }>('SELECT text FROM log_checkpoint WHERE number = $1', [checkpoint - 1])).rows[0]!;
    const old = stateOf(before.text, checkpoint - 1);
    const previousState = join(dir, 'previous.state');
    writeFileSync(previousState, JSON.stringify(old));
    const row = (await t.pool.query<{ text: string; signature: string; checkpoint_hash: string }>('SELECT text, signature, checkpoint_hash FROM log_checkpoint WHERE tree_size = $1', [size])).rows[0]!;
    // Re-sign the checkpoint with the log's own key, its previous line naming something else: only the link is wrong.
    const parsed = parseLogCheckpoint(row.text);
    if (!parsed.ok) throw new Error(parsed.reason);
    const forgedText = formatLogCheckpoint({ ...parsed.value, previous: sha256(new TextEncoder().encode('not the previous checkpoint')) });
    const logSigningKey = hexToBytes(readFileSync(join(t.config.dataDir, 'anchor-signing.key'), 'utf8').trim());
    const forgedNote = signNote(forgedText, [ed25519NoteSigner(logVerifier.name, logSigningKey)]);
    const forgedSignature = forgedNote.slice(forgedText.length + 1);
    await t.pool.query('UPDATE log_checkpoint SET text = $1, signature = $2, checkpoint_hash = $3 WHERE tree_size = $4', [forgedText, forgedSignature, bytesToHex(checkpointHash(forgedText)), size]);
    try {
      const stateBefore = readFileSync(previousState, 'utf8');
      const run = await witness(witnessArgs(previousState));
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(new RegExp(`^ALARM previous: checkpoint ${checkpoint} \\(${size} leaves\\) follows checkpoint ${checkpoint - 1} \\(${old.size} leaves\\)`));
      expect(run.stdout).toBe('');
      expect(run.requests).not.toContain('POST /log/cosignature');
      expect(readFileSync(previousState, 'utf8')).toBe(stateBefore);
      expect(await cosignatureRows(size)).toEqual([]);
    } finally {
      await t.pool.query('UPDATE log_checkpoint SET text = $1, signature = $2, checkpoint_hash = $3 WHERE tree_size = $4', [row.text, row.signature, row.checkpoint_hash, size]);
    }
    const restored = await witness(witnessArgs(previousState));
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(new RegExp(`^OK size ${size} root \\S+ cosigned`));
    // The witness's own state, older still, catches up by a consistency proof; the checkpoint is cosigned already.
    const caughtUp = await witness(witnessArgs(stateFile));
    expect(caughtUp.code, caughtUp.stderr).toBe(0);
    expect(caughtUp.stdout).toBe(`OK size ${size} root ${readState(stateFile).root} cosigned\n`);
  });

  it('raises ALARM fork for another root at the size it holds, and keeps its state', async () => {
    const { file: forked, latest: state } = await editedState('forked.state', { root: bytesToBase64(sha256(new TextEncoder().encode('another tree'))) });
    const before = readFileSync(forked, 'utf8');
    const run = await witness(witnessArgs(forked));
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(new RegExp(`^ALARM fork: two checkpoints of ${state.size} leaves with different roots`));
    expect(run.stdout).toBe('');
    expect(run.requests).not.toContain('POST /log/cosignature');
    expect(readFileSync(forked, 'utf8')).toBe(before);
  });

  it('raises ALARM fork when the consistency proof does not lead from its root to the new one', async () => {
    const old = readState(stateFile);
    const { size } = await admitMessage();
    // Every stored hash changed (a bit flipped, undone below): the proofs the engine builds no longer fit the signed roots.
    const flip = async (): Promise<void> => {
      await t.pool.query('UPDATE log_node SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1)');
      await t.pool.query('UPDATE ledger_leaf SET leaf_hash = set_byte(leaf_hash, 0, get_byte(leaf_hash, 0) # 1)');
    };
    await flip();
    try {
      const stateBefore = readFileSync(stateFile, 'utf8');
      const run = await witness(witnessArgs(stateFile));
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(new RegExp(`^ALARM fork: the ${size}-leaf tree \\(root \\S+\\) is not proven to extend the ${old.size}-leaf tree`));
      expect(run.requests).toContain(`GET /log/consistency?old=${old.size}&new=${size}`);
      expect(run.requests).not.toContain('POST /log/cosignature');
      expect(readFileSync(stateFile, 'utf8')).toBe(stateBefore);
      expect(await cosignatureRows(size)).toEqual([]);
    } finally {
      await flip();
    }
    const restored = await witness(witnessArgs(stateFile));
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(new RegExp(`^OK size ${size} root \\S+ cosigned`));
  });

  it('raises ALARM shrink when the log is smaller than the state says it was', async () => {
    const { treeSize } = await logInfo();
    const { file: bigger, latest: state } = await editedState('bigger.state', { size: treeSize + 1000 });
    const run = await witness(witnessArgs(bigger));
    expect(run.code).toBe(3);
    expect(run.stderr).toBe(`ALARM shrink: the log's latest checkpoint has ${state.size} leaves, but it showed ${state.size + 1000} before\n`);
    expect(run.requests).not.toContain('POST /log/cosignature');
  });

  it('raises ALARM signature when the checkpoint is not signed by the pinned log key', async () => {
    const impostor = formatVerifierKey(logVerifier.name, SIGNATURE_TYPE_ED25519, publicKeyFor(sha256(new TextEncoder().encode('another log key'))));
    const state = join(dir, 'impostor.state');
    const run = await witness(['--log', t.httpUrl, '--log-key', impostor, '--key', keyFile, '--state', state, '--once']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^ALARM signature: the latest checkpoint does not open with the log key/);
    expect(existsSync(state)).toBe(false);
  });

  it('reports the engine refusing a witness key it is not configured with, and exits non-zero', async () => {
    const otherKeyFile = join(dir, 'other.key');
    const keygen = await witness(['keygen', '--name', 'witness.test/unknown', '--out', otherKeyFile]);
    expect(keygen.code).toBe(0);
    const otherKey = keygen.stdout.trim();
    const { treeSize } = await logInfo();
    const run = await witness(['--log', t.httpUrl, '--log-key', logKey, '--key', otherKeyFile, '--state', join(dir, 'other.state'), '--once']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ERROR POST /log/cosignature answered HTTP 403 ANCHORLINE_ERR_FORBIDDEN');
    expect(run.stderr).toContain(`must add this witness's verifier key ${otherKey} to anchor.witnesses`);
    expect(await cosignatureRows(treeSize)).toEqual([`${witnessVerifier.name}+${witnessVerifier.keyId.toString(16).padStart(8, '0')}`]);
  });

  it('as a monitor checks the same way, keeps a state, and never POSTs', async () => {
    const monitorState = join(dir, 'monitor.state');
    const monitorArgs = ['--monitor', '--log', t.httpUrl, '--log-key', logKey, '--state', monitorState, '--once'];
    const first = await witness(monitorArgs);
    expect(first.code, first.stderr).toBe(0);
    const firstSize = readState(monitorState).size;
    expect(first.stdout).toMatch(new RegExp(`^OK size ${firstSize} root \\S+ verified`));
    const { size } = await admitMessage();
    const second = await witness(monitorArgs);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`^OK size ${size} root \\S+ verified\\n$`));
    expect(second.requests).toContain(`GET /log/consistency?old=${firstSize}&new=${size}`);
    for (const request of [...first.requests, ...second.requests]) expect(request).toMatch(/^GET /);
    expect(await cosignatureRows(size)).toEqual([]);
    const withKey = await witness([...monitorArgs, '--key', keyFile]);
    expect(withKey.code).toBe(2);
    expect(withKey.stderr).toContain('takes no --key');
  });

  it('with --no-submit cosigns and prints the cosignature line, sending nothing', async () => {
    const copy = join(dir, 'no-submit.state');
    const monitorState = readState(join(dir, 'monitor.state'));
    // A state one checkpoint behind the latest, so that there is something new to cosign.
    copyFileSync(stateFile, copy);
    const run = await witness(witnessArgs(copy, '--no-submit'));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^OK size ${monitorState.size} root \\S+ cosigned, not submitted: \u2014 ${WITNESS_NAME} [A-Za-z0-9+/=]+\\n$`));
    expect(run.requests.every((r) => r.startsWith('GET '))).toBe(true);
    // The printed line is a valid cosignature of the latest checkpoint: appended to the log's note, it verifies.
    const line = run.stdout.slice(run.stdout.indexOf('\u2014'));
    const note = `${(await latestNote()).trimEnd()}\n${line}`;
    expect(openLogCheckpoint(note, logVerifier, [witnessVerifier]).ok).toBe(true);
  });

  it('reports an unreachable, slow or oversized log as an error (exit 1) and changes nothing', async () => {
    const server = http.createServer((request, response) => {
      if (request.url?.startsWith('/big/')) response.end('x'.repeat(100 * 1024));
      // /slow/ never answers.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      const state = join(dir, 'unreachable.state');
      const args = (log: string): string[] => ['--log', log, '--log-key', logKey, '--key', keyFile, '--state', state, '--once', '--timeout', '0.5'];
      const refused = await witness(args(closedUrl));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^ERROR GET \/log\/checkpoint to http:\/\/127\.0\.0\.1:\d+ failed: ECONNREFUSED\n$/);
      const big = await witness(args(`${base}/big`));
      expect(big.code).toBe(1);
      expect(big.stderr).toBe('ERROR GET /log/checkpoint: the answer is larger than 65536 bytes\n');
      const slow = await witness(args(`${base}/slow`));
      expect(slow.code).toBe(1);
      expect(slow.stderr).toBe('ERROR GET /log/checkpoint: no answer within 0.5 s\n');
      expect(existsSync(state)).toBe(false);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('in a loop reports every round and exits 3 when stopped after an alarm, 0 after none', async () => {
    const { treeSize } = await logInfo();
    const { file: bigger } = await editedState('loop-bigger.state', { size: treeSize + 5 });
    const alarmed = new AbortController();
    const lines: string[] = [];
    const alarmRun = runWitness(['--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', bigger, '--interval', '0.1'], {
      out: (text) => lines.push(text),
      err: (text) => {
        lines.push(text);
        if (lines.length >= 2) alarmed.abort();
      },
      stop: alarmed.signal,
    });
    expect(await alarmRun).toBe(3);
    expect(lines).toEqual([expect.stringMatching(/^ALARM shrink: /), expect.stringMatching(/^ALARM shrink: /)]);

    const calm = new AbortController();
    const out: string[] = [];
    const calmRun = runWitness(['--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', stateFile, '--interval', '0.1'], {
      out: (text) => {
        out.push(text);
        calm.abort();
      },
      err: (text) => out.push(text),
      stop: calm.signal,
    });
    expect(await calmRun).toBe(0);
    expect(out).toEqual([expect.stringMatching(/^OK size \d+ (unchanged|root \S+ cosigned)\n$/)]);
  });

  it('runs as the real CLI: `anchorline witness` loops until SIGTERM and exits 3 after an alarm', async () => {
    const { treeSize } = await logInfo();
    const { file: bigger, latest: state } = await editedState('cli-bigger.state', { size: treeSize + 7 });
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'witness', '--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', bigger, '--interval', '0.2'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no alarm from the CLI within 30 s: ${stderr}`)), 30_000);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('ALARM shrink:')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(3);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^ALARM shrink: the log's latest checkpoint has ${state.size} leaves, but it showed ${state.size + 7} before\\n`));
  });

  it('exits 2 for usage errors and unusable files', async () => {
    const cases: Array<[string[], string]> = [
      [['--log', t.httpUrl, '--log-key', logKey, '--state', join(dir, 'x.state'), '--once'], '--key <file> is required'],
      [['--log', 'ftp://example', '--log-key', logKey, '--key', keyFile, '--state', join(dir, 'x.state')], '--log must be an http(s) URL'],
      [['--log', t.httpUrl, '--log-key', witnessKey, '--key', keyFile, '--state', join(dir, 'x.state')], '--log-key is not an Ed25519 verifier key'],
      [['--log', t.httpUrl, '--log-key', logKey, '--key', join(dir, 'missing.key'), '--state', join(dir, 'x.state')], 'cannot read key file'],
      [['--log', t.httpUrl, '--log-key', logKey, '--key', stateFile, '--state', join(dir, 'x.state')], 'does not hold a signer key'],
      [['--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', keyFile], 'is not a witness state: not JSON'],
      [['--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', stateFile, '--interval', '0'], '--interval must be a number of seconds'],
      [['--log', t.httpUrl, '--log-key', logKey, '--key', keyFile, '--state', stateFile, '--submit', '--no-submit'], 'contradict'],
    ];
    for (const [args, message] of cases) {
      const run = await witness(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain(message);
      expect(run.requests).toEqual([]);
    }
    const inconsistent = join(dir, 'inconsistent.state');
    writeFileSync(inconsistent, JSON.stringify({ ...readState(stateFile), size: 1 }));
    const run = await witness(witnessArgs(inconsistent));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("size and root are not the text's");
    // The key file's characters are never echoed.
    const secret = readFileSync(keyFile, 'utf8').trim();
    expect(run.stderr).not.toContain(secret.slice(-20));
  });
});
