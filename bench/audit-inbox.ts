/**
 * The audit's pass over the inbox: how fast `anchorline audit` re-hashes stored messages, on an embedded PostgreSQL
 * this script starts itself. The inbox is filled with rows of HL7-like bytes (no leaves, no versions), so the
 * figures are the raw-message check's alone: rows/s and MB/s of raw bytes re-hashed, at the default page size and
 * at a small one.
 *
 *   npx tsx bench/audit-inbox.ts                          # 5000 rows of 2 KiB
 *   ROWS=20000 ROW_BYTES=8192 npx tsx bench/audit-inbox.ts
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../config/logger.ts';
import { auditLedger } from '../store/audit.ts';
import { createPool, migrate } from '../store/db.ts';
import { startEmbeddedPostgres } from '../store/embedded-postgres.ts';

const ROWS = Number(process.env.ROWS ?? 5000);
const ROW_BYTES = Number(process.env.ROW_BYTES ?? 2048);
const SCHEMA = 'bench_audit';

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-audit-'));
  // mkdtemp makes it 0700; when we are root the server runs as an unprivileged user that must be able to enter it.
  await chmod(dataDir, 0o755);
  const postgres = await startEmbeddedPostgres({ dataDir, log: silentLogger() });
  const pool = createPool({ connectionString: postgres.connectionString, schema: SCHEMA, max: 2 });
  try {
    await migrate(pool, SCHEMA);
    // Distinct bytes per row (md5 of the row number, repeated), hashed by PostgreSQL as intake would have.
    await pool.query(
      `INSERT INTO inbox_message (protocol, source, sender, control_id, raw, raw_sha256, raw_size, disposition, state)
       SELECT 'mllp', 'bench', 'EMR|SNUH', 'B-' || i, raw, sha256(raw), octet_length(raw), 'accepted', 'done'
         FROM (SELECT i, substring(convert_to(repeat(md5(i::text), ($2::int / 32) + 1), 'UTF8') FROM 1 FOR $2::int) AS raw
                 FROM generate_series(1, $1::int) AS i) AS rows`,
      [ROWS, ROW_BYTES],
    );
    await pool.query('ANALYZE inbox_message');
    const megabytes = (ROWS * ROW_BYTES) / (1024 * 1024);
    console.log(`inbox: ${ROWS} rows of ${ROW_BYTES} bytes (${megabytes.toFixed(1)} MB)`);
    for (const pageRows of [1000, 100]) {
      await auditLedger(pool, { pageRows }); // warm the cache and the code
      const runs: number[] = [];
      for (let run = 0; run < 3; run++) {
        const startedAt = performance.now();
        const report = await auditLedger(pool, { pageRows });
        runs.push(performance.now() - startedAt);
        if (!report.ok || report.checked['raw-message'] !== ROWS) throw new Error(`unexpected report: ${JSON.stringify(report.mismatches)}`);
      }
      const ms = runs.sort((a, b) => a - b)[1]!;
      console.log(`pageRows ${pageRows}: ${ms.toFixed(0)} ms (median of 3), ${Math.round(ROWS / (ms / 1000))} rows/s, ${(megabytes / (ms / 1000)).toFixed(1)} MB/s`);
    }
  } finally {
    await pool.end();
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
