/**
 * `npm start` as an operator or a process manager runs it: a SIGTERM sent to npm reaches the engine, which shuts
 * down with its worker process and embedded PostgreSQL instead of being left running without a parent.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dataDir: string | undefined;
const leftovers: number[] = [];

afterAll(async () => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('stops the engine, its worker process and its PostgreSQL when npm gets SIGTERM', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-npm-start-'));
    // npm as found on PATH, as an operator runs it.
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: { ...process.env, ANCHORLINE_DATA_DIR: dataDir, HTTP_PORT: '0', MLLP_PORT: '0', DICOM_PORT: '0', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: Array<Record<string, unknown>> = [];
    const seen = (message: string): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const found = logs.find((entry) => entry.msg === message);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no "${message}" log line`)), 150_000);
        lines.on('line', () => {
          const entry = logs.find((e) => e.msg === message);
          if (entry) {
            clearTimeout(timer);
            resolve(entry);
          }
        });
      });
    const lines = readline.createInterface({ input: npm.stdout! });
    lines.on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    });
    const ready = await seen('anchorline ready');
    const enginePid = ready.pid as number;
    const workerPid = (logs.find((entry) => entry.msg === 'worker process started')?.pid as number | undefined) ?? 0;
    const postgresPid = logs.find((entry) => entry.msg === 'embedded postgres: ready')?.postgresPid as number | undefined;
    // Whatever this test fails to stop, afterAll kills.
    leftovers.push(enginePid, ...(workerPid > 0 ? [workerPid] : []), ...(postgresPid !== undefined ? [postgresPid] : []));
    expect(alive(enginePid)).toBe(true);

    npm.kill('SIGTERM');
    await seen('anchorline stopped');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && alive(enginePid)) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(alive(enginePid)).toBe(false);
    if (workerPid > 0) expect(alive(workerPid)).toBe(false);
    if (postgresPid !== undefined) expect(alive(postgresPid)).toBe(false);
  }, 180_000);
});
