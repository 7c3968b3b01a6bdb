/**
 * Starts a private redis-server (the Debian package) on a free loopback port for tests. Each caller gets its own
 * process, so a test may kill it to simulate losing Redis without touching anyone else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../store/embedded-postgres.ts';
import { waitForPort } from './ports.ts';

export interface TestRedis {
  url: string;
  port: number;
  process: ChildProcess;
  /** SIGKILL: the server disappears as in a crash. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedis(extraArgs: string[] = [], fixedPort?: number): Promise<TestRedis> {
  const port = fixedPort ?? (await freePort());
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...extraArgs],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPort(port, 10_000, () => child.exitCode === null).catch(() => {
    throw new Error('redis-server did not start (is the Debian package redis-server installed?)');
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
