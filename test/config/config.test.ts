/** One config schema: defaults, env overrides, unknown keys rejected, and a bad config stops the CLI with the key named. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('config', () => {
  it('has defaults for everything', () => {
    const config = loadConfig({ env: {} });
    expect(config.http).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(config.mllp).toMatchObject({ host: '127.0.0.1', port: 2575, ackMode: 'afterCommit' });
    expect(config.dataDir).toBe('./data');
    expect(config.mapping.timeZone).toBe('Asia/Seoul');
    // The worker keeps V8's young generation unless told otherwise: a bigger one starved intake on shared cores.
    expect(config.workers.semiSpaceMb).toBe(64);
    expect(config.workers.parallelScavenge).toBe(false);
    expect(loadConfig({ env: { ANCHORLINE__WORKERS__SEMI_SPACE_MB: '64' } }).workers.semiSpaceMb).toBe(64);
    // Intake goes before mapping unless told otherwise.
    expect(config.workers.intakePriority).toEqual({ enabled: true, ackTargetMs: 10, minMappingShare: 0.25, maxBacklog: 20_000 });
    expect(loadConfig({ env: { ANCHORLINE__WORKERS__INTAKE_PRIORITY__ENABLED: 'false' } }).workers.intakePriority.enabled).toBe(false);
    // One worker process, more on request.
    expect(config.workers.processes).toBe(1);
    expect(loadConfig({ env: { ANCHORLINE__WORKERS__PROCESSES: '3' } }).workers.processes).toBe(3);
  });

  it('takes the documented environment variables and the generic form', () => {
    const config = loadConfig({ env: { HTTP_PORT: '9000', MLLP_PORT: '3575', DATABASE_URL: 'postgres://x/y', REDIS_URL: 'redis://r', ANCHORLINE_DATA_DIR: '/tmp/d', ANCHORLINE__MLLP__MAX_FRAME_BYTES: '2048', ANCHORLINE__MLLP__ACK_MODE: 'afterMapping' } });
    expect(config.http.port).toBe(9000);
    expect(config.mllp.port).toBe(3575);
    expect(config.mllp.maxFrameBytes).toBe(2048);
    expect(config.mllp.ackMode).toBe('afterMapping');
    expect(config.database.url).toBe('postgres://x/y');
    expect(config.redis.url).toBe('redis://r');
    expect(config.dataDir).toBe('/tmp/d');
  });

  const bad: Array<[string, Record<string, string>, string]> = [
    ['unknown key', { ANCHORLINE__MLLP__MAX_FRAME_BYTE: '1' }, 'mllp.maxFrameByte: unknown key'],
    ['wrong type', { MLLP_PORT: 'abc' }, 'mllp.port'],
    ['out of range', { HTTP_PORT: '70000' }, 'http.port'],
    ['bad enum', { ANCHORLINE__MLLP__ACK_MODE: 'whenever' }, 'mllp.ackMode'],
    ['bad time zone', { ANCHORLINE__MAPPING__TIME_ZONE: 'Mars/Olympus' }, 'mapping.timeZone'],
    ['unknown section', { ANCHORLINE__NOPE__X: '1' }, 'nope: unknown key'],
    ['worker processes that inline workers would ignore', { ANCHORLINE__WORKERS__ISOLATION: 'inline', ANCHORLINE__WORKERS__PROCESSES: '2' }, "workers.processes: more than one worker process needs isolation 'process'"],
  ];
  it.each(bad)('rejects %s naming the key', (_name, env, expected) => {
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    expect(() => loadConfig({ env })).toThrow(expected);
  });

  it('makes the CLI exit non-zero with the key named, before opening anything', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), 'start'], {
      cwd: ROOT,
      env: { ...process.env, ANCHORLINE__MLLP__IDLE_TIMEOUT: '5', ANCHORLINE_DATA_DIR: '/nonexistent/never-created' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('mllp.idleTimeout: unknown key');
  });
});
