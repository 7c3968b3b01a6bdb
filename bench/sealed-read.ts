/**
 * What opening sealed versions adds to a read, measured where it happens: the store's read by id (`readCurrent`, what
 * `GET /fhir/Patient/{id}` runs) of patients stored sealed under their keys against patients stored plain, in one
 * process on one PostgreSQL, alternating, counting CPU time per read on both sides (this process: the query, the
 * bytea, the key cache, AES-GCM and the JSON parse; PostgreSQL: the view with its patient_key join and the output).
 *
 *   npm run bench:sealed-read -- [--patients 1000] [--reads 20000] [--rounds 5] [--concurrency 8]
 *
 * The whole read of the HTTP API costs more than this (routing, authentication, serialising the answer, and the
 * AuditEvent every read writes): `npm run bench:fhir-read` prints that, in server CPU-ms per request, so the cost of
 * encryption as a share of a read is the difference here over that figure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { silentLogger } from '../config/logger.ts';
import { attachKeyring, createPool, FileKms, Keyring, migrate, resources, startEmbeddedPostgres, withTransaction } from '../store/index.ts';
import { CpuMeter } from './cpu-meter.ts';

const { values } = parseArgs({
  options: {
    patients: { type: 'string', default: '1000' },
    reads: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
  },
});
const PATIENTS = Number(values.patients);
const READS = Number(values.reads);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);

function patient(id: string, n: number): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id,
    identifier: [{ system: 'urn:oid:1.2.410.200001.1', value: `SR${n}`, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
    name: [{ family: '김', given: [`민수${n}`], text: `김민수${n}` }, { use: 'official', family: 'Kim', given: ['Minsu'] }],
    gender: n % 2 === 0 ? 'female' : 'male',
    birthDate: '1980-01-01',
    telecom: [{ system: 'phone', value: '+82-2-555-0100', use: 'home' }],
    address: [{ line: ['1 Main St'], city: 'Seoul', postalCode: '04000', country: 'KOR' }],
    managingOrganization: { reference: 'Organization/snuh' },
  };
}

async function store(pool: pg.Pool, ids: string[], offset: number): Promise<void> {
  for (let start = 0; start < ids.length; start += 200) {
    await withTransaction(pool, async (client) => {
      const batch = ids.slice(start, start + 200).map((id, i) => ({ stored: resources.stampVersion(undefined, patient(id, offset + start + i)), sourceMessageId: null }));
      await resources.writeVersions(client, batch, new Map());
    });
  }
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-sealed-read-'));
const server = await startEmbeddedPostgres({ dataDir, log: silentLogger() });
const schema = 'sealed_read';
const sealingPool = createPool({ connectionString: server.connectionString, schema, max: CONCURRENCY });
const plainPool = createPool({ connectionString: server.connectionString, schema, max: CONCURRENCY });
try {
  await migrate(sealingPool, schema);
  const kms = await FileKms.open(path.join(dataDir, 'master-key.json'));
  const options = { cacheMaxKeys: 10_000, cacheTtlMs: 300_000 };
  attachKeyring(sealingPool, new Keyring(kms, { sealing: true, ...options }));
  // The plain pool's keyring seals nothing new, and would open sealed rows; it only ever reads plain ones here.
  attachKeyring(plainPool, new Keyring(kms, { sealing: false, ...options }));
  const sealedIds = Array.from({ length: PATIENTS }, () => randomUUID());
  const plainIds = Array.from({ length: PATIENTS }, () => randomUUID());
  await store(sealingPool, sealedIds, 0);
  await store(plainPool, plainIds, PATIENTS);
  const sealedRows = await sealingPool.query<{ n: number }>(`SELECT count(*)::int AS n FROM fhir_resource_history WHERE sealed IS NOT NULL`);
  console.log(`${PATIENTS} patients sealed (${sealedRows.rows[0]!.n} sealed versions), ${PATIENTS} plain; ${READS} reads a phase, ${CONCURRENCY} at a time, ${ROUNDS} rounds, ${os.cpus().length} cores`);

  const meter = CpuMeter.open();
  const roots = new Map<string, number>([['PostgreSQL', server.pid]]);
  const phase = async (label: string, pool: pg.Pool, ids: string[]): Promise<{ client: number; server: number }> => {
    const before = meter?.sample(roots);
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < READS) {
        const id = ids[next++ % ids.length]!;
        const found = await resources.readCurrent(pool, 'Patient', id);
        if (found === undefined) throw new Error(`Patient/${id} not read back`);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    const after = meter?.sample(roots);
    const client = ((after?.get('load generator') ?? 0) - (before?.get('load generator') ?? 0)) / READS;
    const postgres = ((after?.get('PostgreSQL') ?? 0) - (before?.get('PostgreSQL') ?? 0)) / READS;
    console.log(`${label.padEnd(7)} ${(READS / seconds).toFixed(0).padStart(6)} reads/s  CPU-ms per read: this process ${client.toFixed(4)}, PostgreSQL ${postgres.toFixed(4)}, both ${(client + postgres).toFixed(4)}  (load ${os.loadavg()[0]!.toFixed(2)})`);
    return { client, server: postgres };
  };
  await phase('warm-up', sealingPool, sealedIds);
  await phase('warm-up', plainPool, plainIds);
  const sums = { sealed: { client: 0, server: 0 }, plain: { client: 0, server: 0 } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, pool, ids] of [['sealed', sealingPool, sealedIds], ['plain', plainPool, plainIds]] as const) {
      const result = await phase(label, pool, ids);
      sums[label].client += result.client / ROUNDS;
      sums[label].server += result.server / ROUNDS;
    }
  }
  const both = (x: { client: number; server: number }): number => x.client + x.server;
  console.log(
    `mean CPU-ms per read: sealed ${both(sums.sealed).toFixed(4)} (this process ${sums.sealed.client.toFixed(4)}, PostgreSQL ${sums.sealed.server.toFixed(4)}), ` +
      `plain ${both(sums.plain).toFixed(4)} (this process ${sums.plain.client.toFixed(4)}, PostgreSQL ${sums.plain.server.toFixed(4)}); ` +
      `opening sealed versions adds ${(both(sums.sealed) - both(sums.plain)).toFixed(4)} CPU-ms a read`,
  );
} finally {
  await sealingPool.end();
  await plainPool.end();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}
