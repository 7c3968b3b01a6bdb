/** What `anchorline audit` writes, captured for a test instead of going to stdout and stderr; and an audit of a test engine. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAudit, type AuditOutput } from '../../cli/audit.ts';
import type { AuditReport } from '../../store/index.ts';
import { eventually, type TestEngine } from './engine.ts';

export function captured(): AuditOutput & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (text) => (out += text), err: (text) => (err += text), stdout: () => out, stderr: () => err };
}

/** `anchorline audit --blobs all --json` on a test engine's config, once mapping and batching have settled. */
export async function auditEngine(t: TestEngine): Promise<{ exit: number; report: AuditReport }> {
  await eventually(async () => {
    const { rows } = await t.pool.query<{ queued: number; waiting: number }>(
      `SELECT (SELECT count(*)::int FROM inbox_message WHERE state = 'queued') AS queued, (SELECT count(*)::int FROM ledger_leaf WHERE batch_number IS NULL) AS waiting`,
    );
    return rows[0]!.queued === 0 && rows[0]!.waiting === 0;
  }, 20_000, 'mapping and a closed batch');
  const configFile = path.join(t.config.dataDir, 'audit-config.json');
  await writeFile(configFile, JSON.stringify(t.config));
  const output = captured();
  const exit = await runAudit(['--config', configFile, '--json', '--blobs', 'all'], output, {});
  return { exit, report: JSON.parse(output.stdout()) as AuditReport };
}
