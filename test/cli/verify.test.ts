import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { FixtureCase } from '../fixtures/anchor/bundle/generate.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = 'test/fixtures/anchor/bundle/';
const scratch = mkdtempSync(join(tmpdir(), 'anchorline-verify-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI entry point in a child process, as an auditor would, with no config or database around. */
function anchorline(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: REPO_ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line.length > 0);

describe('anchorline verify', () => {
  it('passes every check of a good bundle and its resource, and exits 0', async () => {
    const run = await anchorline('verify', `${FIXTURES}good.bundle.json`, '--resource', `${FIXTURES}good.resource.json`);
    expect(run.code).toBe(0);
    const out = lines(run.stdout);
    expect(out.map((line) => line.split(':')[0])).toEqual([
      'PASS bundle-format',
      'PASS leaf-hash',
      'PASS resource-hash',
      'PASS inclusion',
      'PASS header-hash',
      'PASS header-signature',
      'PASS header-chain',
      'PASS anchor',
      'verified',
    ]);
    expect(run.stderr).toBe('');
  });

  const cases = JSON.parse(readFileSync(join(REPO_ROOT, FIXTURES, 'cases.json'), 'utf8')) as FixtureCase[];
  it.each(cases)('$bundle (resource: $resource): FAIL lines are exactly $failed', async ({ bundle, resource, failed }) => {
    const run = await anchorline('verify', FIXTURES + bundle, ...(resource === undefined ? [] : ['--resource', FIXTURES + resource]));
    expect(run.code).toBe(failed.length === 0 ? 0 : 1);
    const out = lines(run.stdout);
    const failLines = out.filter((line) => line.startsWith('FAIL '));
    expect(failLines.map((line) => line.slice('FAIL '.length).split(':')[0])).toEqual(failed);
    expect(out.every((line) => /^(PASS|FAIL) [a-z-]+: ./.test(line) || line === 'verified' || line === 'NOT verified')).toBe(true);
    expect(out[out.length - 1]).toBe(failed.length === 0 ? 'verified' : 'NOT verified');
  });

  it('exits 2 with a clear message for a missing bundle file', async () => {
    const run = await anchorline('verify', join(scratch, 'no-such-bundle.json'));
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('cannot read bundle file');
    expect(run.stderr).toContain('no such file');
  });

  it('exits 2 for a bundle that is not JSON, without quoting its contents', async () => {
    const file = join(scratch, 'not-json.json');
    writeFileSync(file, '{"leaf": Secretname Testperson');
    const run = await anchorline('verify', file);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`bundle file ${file} is not valid JSON`);
    expect(run.stderr).not.toContain('Secretname');
  });

  it('exits 2 for a resource file that is missing, not JSON or not UTF-8', async () => {
    const latin1 = join(scratch, 'latin1.json');
    writeFileSync(latin1, Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d])); // {"n":"é"} in Latin-1
    const missing = await anchorline('verify', `${FIXTURES}good.bundle.json`, '--resource', join(scratch, 'missing.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read resource file');
    const notJson = await anchorline('verify', `${FIXTURES}good.bundle.json`, '--resource', join(REPO_ROOT, 'README.md'));
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('is not valid JSON');
    const notUtf8 = await anchorline('verify', `${FIXTURES}good.bundle.json`, '--resource', latin1);
    expect(notUtf8.code).toBe(2);
    expect(notUtf8.stderr).toContain('is not valid UTF-8');
  });

  it('exits 2 for usage errors', async () => {
    for (const args of [['verify'], ['verify', 'a.json', 'b.json'], ['verify', `${FIXTURES}good.bundle.json`, '--resourc', 'x']]) {
      const run = await anchorline(...args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain('usage: anchorline verify');
    }
  });

  it('exits 2 naming the rule for a bundle or resource file that other readers could read differently', async () => {
    const bundleText = readFileSync(join(REPO_ROOT, FIXTURES, 'good.bundle.json'), 'utf8');
    const resourceText = readFileSync(join(REPO_ROOT, FIXTURES, 'good.resource.json'), 'utf8');
    const repeated = join(scratch, 'repeated.bundle.json');
    writeFileSync(repeated, bundleText.replace('"format":', '"format": "anchorline-proof/1", "format":'));
    const surrogate = join(scratch, 'surrogate.resource.json');
    writeFileSync(surrogate, resourceText.replace('"family": "', '"family": "\\ud800'));
    const encodedSurrogate = join(scratch, 'encoded-surrogate.resource.json');
    writeFileSync(encodedSurrogate, Buffer.concat([Buffer.from(resourceText.slice(0, -2)), Buffer.from([0x2c, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])]));
    const runs = await Promise.all([
      anchorline('verify', repeated),
      anchorline('verify', `${FIXTURES}good.bundle.json`, '--resource', surrogate),
      anchorline('verify', `${FIXTURES}good.bundle.json`, '--resource', encodedSurrogate),
    ]);
    expect(runs.map((run) => run.code)).toEqual([2, 2, 2]);
    expect(runs[0]!.stderr).toContain(`bundle file ${repeated} is not valid I-JSON (RFC 7493): member name "format" appears twice in one object at character`);
    expect(runs[1]!.stderr).toContain(`resource file ${surrogate} is not valid I-JSON (RFC 7493): a string holds a UTF-16 surrogate without its pair`);
    expect(runs[2]!.stderr).toContain('is not valid UTF-8');
    for (const run of runs) expect(run.stdout).toBe('');
  });

  it('verifies a bundle saved with a byte order mark', async () => {
    const file = join(scratch, 'bom.json');
    writeFileSync(file, `\uFEFF${readFileSync(join(REPO_ROOT, FIXTURES, 'good.bundle.json'), 'utf8')}`);
    const run = await anchorline('verify', file);
    expect(run.code).toBe(0);
    expect(lines(run.stdout).at(-1)).toBe('verified');
  });
});
