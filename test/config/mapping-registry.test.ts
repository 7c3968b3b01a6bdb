/**
 * The mapping registry on a real PostgreSQL: file versions deployed once, invalid files rejected with the previous
 * version kept, rollbacks that every registry sharing the database follows, and a rollback that holds until the file
 * changes again.
 */
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readMshHeader } from '../../formats/hl7v2/header.ts';
import { builtInDefault, type MappingBase } from '../../config/mapping-config.ts';
import { MappingRegistry, listMappingConfigs, rollbackMappingConfig } from '../../workers/mapping-registry.ts';
import type { Logger } from '../../config/logger.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { eventually } from '../support/engine.ts';

const BASE: MappingBase = { timeZone: 'Asia/Seoul', identifierSystems: {}, localCodeSystemBase: 'urn:anchorline:local' };
const SEOUL = readMshHeader('MSH|^~\\&|HIS|SEOULGEN|ANCHORLINE|HUB|20250101||ADT^A01|1|P|2.5.1\r');
const OTHER = readMshHeader('MSH|^~\\&|LAB|ELSEWHERE|ANCHORLINE|HUB|20250101||ADT^A01|1|P|2.5.1\r');

function seoulConfig(system: string, extra = ''): string {
  return `name: seoul-his\nmatch:\n  sendingApplication: HIS\n  sendingFacility: SEOULGEN\nidentifierSystems:\n  SEOULGEN: ${system}\n${extra}`;
}

/** A logger whose lines the test reads. */
function capturingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

let db: TestDatabase;
let dir: string;
const registries: MappingRegistry[] = [];

async function openRegistry(log: Logger = pino({ level: 'silent' }), pollIntervalMs = 60_000): Promise<MappingRegistry> {
  const registry = await MappingRegistry.open({ pool: db.pool, log, base: BASE, configDir: dir, pollIntervalMs, debounceMs: 50 });
  registries.push(registry);
  return registry;
}

beforeAll(async () => {
  db = await createTestDatabase('mapreg');
});
afterAll(async () => {
  await db.drop();
});
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
  await rm(dir, { recursive: true, force: true });
  await db.pool.query('TRUNCATE mapping_deployment, mapping_config');
});

async function freshDir(): Promise<void> {
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-mappings-'));
}

describe('mapping registry', () => {
  it('deploys each file version once, and the built-in default when there is no default file', async () => {
    await freshDir();
    await writeFile(path.join(dir, 'seoul-his.yaml'), seoulConfig('https://v1.example/mrn'));
    await writeFile(path.join(dir, 'notes.md'), 'not a config');
    const { log, lines } = capturingLogger();
    const registry = await openRegistry(log);
    expect(registry.select(SEOUL).options.identifierSystems).toEqual({ SEOULGEN: 'https://v1.example/mrn' });
    expect(registry.select(OTHER)).toEqual(builtInDefault(BASE));
    const deployed = lines.filter((line) => line.msg === 'mapping config deployed').map((line) => [line.name, line.oldSha256, line.newSha256]);
    expect(deployed).toEqual(
      expect.arrayContaining([
        ['seoul-his', null, registry.select(SEOUL).sha256],
        ['default', null, builtInDefault(BASE).sha256],
      ]),
    );

    // A second process over the same files and database deploys nothing again.
    await openRegistry();
    const rows = await db.pool.query<{ name: string; reason: string; active: boolean }>('SELECT name, reason, active FROM mapping_deployment ORDER BY id');
    expect(rows.rows.map((r) => `${r.name} ${r.reason} ${r.active}`).sort()).toEqual(['default file true', 'seoul-his file true']);
    const stored = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mapping_config');
    expect(stored.rows[0]!.n).toBe(2);
  });

  it('switches to a changed file, keeps the previous version when a change is invalid, and drops a removed file', async () => {
    await freshDir();
    const file = path.join(dir, 'seoul-his.yaml');
    await writeFile(file, seoulConfig('https://v1.example/mrn'));
    const { log, lines } = capturingLogger();
    const registry = await openRegistry(log);
    const v1 = registry.select(SEOUL).sha256;

    await writeFile(file, seoulConfig('https://v2.example/mrn'));
    await registry.reload();
    const v2 = registry.select(SEOUL);
    expect(v2.options.identifierSystems.SEOULGEN).toBe('https://v2.example/mrn');
    expect(lines.find((line) => line.msg === 'mapping config deployed' && line.newSha256 === v2.sha256)).toMatchObject({ name: 'seoul-his', oldSha256: v1, source: file });

    await writeFile(file, seoulConfig('https://v3.example/mrn', 'timeZone: Asia/Busan\n'));
    await registry.reload();
    expect(registry.select(SEOUL).sha256).toBe(v2.sha256);
    expect(registry.problems().map((p) => `${p.line} ${p.key}`)).toEqual(['7 timeZone']);
    expect(lines.find((line) => String(line.msg).startsWith('mapping config rejected'))).toMatchObject({ file, line: 7, key: 'timeZone', keptSha256: v2.sha256 });

    // Fixed again: the fix deploys and the problem is gone.
    await writeFile(file, seoulConfig('https://v3.example/mrn'));
    await registry.reload();
    expect(registry.select(SEOUL).options.identifierSystems.SEOULGEN).toBe('https://v3.example/mrn');
    expect(registry.problems()).toEqual([]);

    await unlink(file);
    await registry.reload();
    expect(registry.select(SEOUL).name).toBe('default');
  });

  it('keeps a config in use when a changed file collides with it, and takes the colliding file once it is fixed', async () => {
    await freshDir();
    await writeFile(path.join(dir, 'seoul-his.yaml'), seoulConfig('https://v1.example/mrn'));
    await writeFile(path.join(dir, 'a-lab.yaml'), 'name: a-lab\nmatch:\n  sendingApplication: LAB\n');
    const registry = await openRegistry();
    // a-lab sorts first, but it is the changed file that collides, so it is the one rejected (and its old version stays).
    await writeFile(path.join(dir, 'a-lab.yaml'), 'name: a-lab\nmatch:\n  sendingApplication: HIS\n  sendingFacility: SEOULGEN\n');
    await registry.reload();
    expect(registry.select(SEOUL).name).toBe('seoul-his');
    expect(registry.select(OTHER).name).toBe('a-lab');
    expect(registry.problems().map((p) => `${path.basename(p.file)}:${p.line} ${p.key}`)).toEqual(['a-lab.yaml:2 match']);
  });

  it('follows a rollback in every registry sharing the database, until the file changes again', async () => {
    await freshDir();
    const file = path.join(dir, 'seoul-his.yaml');
    await writeFile(file, seoulConfig('https://v1.example/mrn'));
    const first = await openRegistry();
    const v1 = first.select(SEOUL).sha256;
    await writeFile(file, seoulConfig('https://v2.example/mrn'));
    await first.reload();
    const v2 = first.select(SEOUL).sha256;
    const { log, lines } = capturingLogger();
    const second = await openRegistry(log, 100);
    expect(second.select(SEOUL).sha256).toBe(v2);

    const outcome = await rollbackMappingConfig(db.pool, 'seoul-his', v1);
    expect(outcome).toEqual({ name: 'seoul-his', previousSha256: v2, sha256: v1, changed: true });
    // The second registry polls every 100 ms; the first is told to look now.
    await eventually(async () => second.select(SEOUL).sha256 === v1, 5_000, 'the rollback in the polling registry');
    await first.reload();
    expect(first.select(SEOUL).options.identifierSystems.SEOULGEN).toBe('https://v1.example/mrn');
    expect(lines.find((line) => line.msg === 'mapping config: active version changed')).toMatchObject({ name: 'seoul-his', oldSha256: v2, newSha256: v1 });

    // A process starting later over the same file (v2) still maps with the rolled-back version.
    const third = await openRegistry();
    expect(third.select(SEOUL).sha256).toBe(v1);

    // The file changes: that is a new deployment, and it wins over the rollback everywhere.
    await writeFile(file, seoulConfig('https://v3.example/mrn'));
    await third.reload();
    expect(third.select(SEOUL).options.identifierSystems.SEOULGEN).toBe('https://v3.example/mrn');
    await eventually(async () => second.select(SEOUL).options.identifierSystems.SEOULGEN === 'https://v3.example/mrn', 5_000, 'the new file version');

    const [listing] = (await listMappingConfigs(db.pool)).filter((l) => l.name === 'seoul-his');
    expect(listing!.history.map((h) => `${h.reason} ${h.active}`)).toEqual(['file false', 'file false', 'rollback false', 'file true']);
    expect(listing!.active).toMatchObject({ reason: 'file', content: { identifierSystems: { SEOULGEN: 'https://v3.example/mrn' } } });
  });

  it('refuses a rollback to a version the name never had, or an unknown name', async () => {
    await freshDir();
    await writeFile(path.join(dir, 'seoul-his.yaml'), seoulConfig('https://v1.example/mrn'));
    const registry = await openRegistry();
    const codeOf = async (run: Promise<unknown>): Promise<string> => run.then(() => 'ok', (error: unknown) => (isAnchorlineError(error) ? error.code : String(error)));
    expect(await codeOf(rollbackMappingConfig(db.pool, 'seoul-his', registry.select(OTHER).sha256))).toBe('ANCHORLINE_ERR_NOT_FOUND');
    expect(await codeOf(rollbackMappingConfig(db.pool, 'nobody', registry.select(SEOUL).sha256))).toBe('ANCHORLINE_ERR_NOT_FOUND');
    expect(await codeOf(rollbackMappingConfig(db.pool, 'seoul-his', 'ABC'))).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    const same = await rollbackMappingConfig(db.pool, 'seoul-his', registry.select(SEOUL).sha256);
    expect(same.changed).toBe(false);
  });

  it('picks up a change from the file watch, without being asked', async () => {
    await freshDir();
    const file = path.join(dir, 'seoul-his.yaml');
    await writeFile(file, seoulConfig('https://v1.example/mrn'));
    // The poll is an hour away: only the watch can see the change.
    const registry = await openRegistry(pino({ level: 'silent' }), 3_600_000);
    await writeFile(file, seoulConfig('https://watched.example/mrn'));
    await eventually(async () => registry.select(SEOUL).options.identifierSystems.SEOULGEN === 'https://watched.example/mrn', 5_000, 'the watched change');
  });

  it('finds a config directory created after start', async () => {
    await freshDir();
    await rm(dir, { recursive: true });
    const registry = await openRegistry(pino({ level: 'silent' }), 100);
    expect(registry.select(SEOUL).name).toBe('default');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir);
    await writeFile(path.join(dir, 'seoul-his.yaml'), seoulConfig('https://late.example/mrn'));
    await eventually(async () => registry.select(SEOUL).name === 'seoul-his', 5_000, 'the new directory');
  });
});
