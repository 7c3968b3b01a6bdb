/**
 * The engine as a separate process (`anchorline start` through tsx, or compiled: dist/cli/main.js on plain Node), for
 * tests that kill it or test the build. Its JSON log lines are parsed to learn the ports it bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ChildEngine {
  process: ChildProcess;
  /** 0 for a worker process. */
  httpPort: number;
  mllpPort: number;
  dicomPort: number;
  /** The embedded PostgreSQL port, when the child runs one. */
  postgresPort?: number;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** `nodeFlags`: Node and V8 options for the child's command line (those NODE_OPTIONS does not take). */
export async function startChildEngine(env: Record<string, string>, timeoutMs = 60_000, command: 'start' | 'worker' = 'start', code: 'sources' | 'compiled' = 'sources', nodeFlags: readonly string[] = []): Promise<ChildEngine> {
  const readyMessage = command === 'start' ? 'anchorline ready' : 'anchorline worker ready';
  const main = code === 'sources' ? ['--import', 'tsx', path.join(ROOT, 'cli/main.ts')] : [path.join(ROOT, 'dist/cli/main.js')];
  // BENCH_CPU_PROF_DIR: each engine process writes a V8 CPU profile there when it exits (benchmarks' profiles).
  const profile = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, ...nodeFlags, ...main, command], {
    cwd: ROOT,
    env: { ...process.env, HTTP_PORT: '0', MLLP_PORT: '0', DICOM_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === readyMessage) resolve(entry);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`engine exited with ${code} before it was ready: ${stderr}`)));
    setTimeout(() => reject(new Error(`engine not ready after ${timeoutMs} ms: ${stderr}`)), timeoutMs).unref();
  });
  const entry = await ready;
  const pg = logs.find((l) => l.msg === 'embedded postgres: ready');
  return {
    process: child,
    httpPort: (entry.httpPort as number | undefined) ?? 0,
    mllpPort: (entry.mllpPort as number | undefined) ?? 0,
    dicomPort: (entry.dicomPort as number | undefined) ?? 0,
    ...(pg ? { postgresPort: pg.port as number } : {}),
    logs,
    exited,
  };
}
