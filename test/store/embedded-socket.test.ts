/**
 * The embedded PostgreSQL is reached over a Unix socket in the data directory (cheaper per statement than loopback
 * TCP), by the engine that starts it and by tools that find it running; a data directory whose path would make the
 * socket's path too long stays on TCP.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/logger.ts';
import { runningEmbeddedConnection, startEmbeddedPostgres, type RunningPostgres } from '../../store/index.ts';

const made: string[] = [];
const servers: RunningPostgres[] = [];

afterAll(async () => {
  for (const server of servers) await server.stop();
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

/** Where the connection arrived: NULL for a Unix socket, else the server's TCP address. */
async function serverAddress(connectionString: string): Promise<string | null> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<{ address: string | null }>('SELECT host(inet_server_addr()) AS address')).rows[0]!.address;
  } finally {
    await client.end();
  }
}

describe('the embedded PostgreSQL connection', () => {
  it('goes over the Unix socket in the data directory, for the engine and for tools', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-socket-'));
    made.push(dataDir);
    const server = await startEmbeddedPostgres({ dataDir, log: silentLogger() });
    servers.push(server);
    expect(new URL(server.connectionString).searchParams.get('host')).toBe(path.join(dataDir, 'pg-socket'));
    expect(await serverAddress(server.connectionString)).toBeNull();
    const found = runningEmbeddedConnection(dataDir)!;
    expect(found).toBe(server.connectionString);
    // TCP still answers, for what connects by address.
    expect(await serverAddress(server.connectionString.replace(/\?host=.*$/, ''))).toBe('127.0.0.1');
  }, 60_000);

  it('stays on TCP when the socket path would be too long for a Unix socket', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'anchorline-socket-'));
    made.push(base);
    // The server's unprivileged user must be able to enter the parent of its data directory.
    await chmod(base, 0o755);
    const dataDir = path.join(base, 'd'.repeat(100));
    const server = await startEmbeddedPostgres({ dataDir, log: silentLogger() });
    servers.push(server);
    expect(new URL(server.connectionString).searchParams.get('host')).toBeNull();
    expect(await serverAddress(server.connectionString)).toBe('127.0.0.1');
    expect(runningEmbeddedConnection(dataDir)).toBe(server.connectionString);
  }, 60_000);
});
