/**
 * `anchorline audit [--config file] [--json] [--max-findings N] [--blobs N|all|none]`: re-hashes the whole provenance
 * ledger in the engine's database (leaves, old batch headers, and the one log recomputed against its nodes,
 * checkpoints and cosignatures), every stored inbox message and mapping configuration, and the DICOM blobs the inbox
 * names (store/audit.ts), and reports every mismatch.
 *
 * The database is the engine's, from the same config as `start`: DATABASE_URL (database.url) when set; otherwise the
 * embedded server under the data dir. When an engine is running there, the audit connects to its server (the audit
 * only reads, in one snapshot, so it can run beside the engine); when none is, the audit starts the server and stops
 * it after. Batch signatures and the checkpoints' log key are also checked against the engine's signing key when
 * its key file is at hand (anchor.signingKeyFile, default <dataDir>/anchor-signing.key); cosignatures must be by the
 * witnesses the config names (anchor.witnesses). Blobs are looked up in the engine's blob store (dicom.blobDir,
 * default <dataDir>/blobs); `--blobs none` skips them, for an audit run away from the blob store.
 *
 * Prints one line per check, `PASS name: n checked` or `FAIL name: k mismatches` followed by that check's findings,
 * then a summary line; with --json, the report object instead. Findings name ids and hashes, never content.
 * Exit codes: 0 no mismatch, 1 mismatches found, 2 the audit could not run (usage, config or database error).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bytesToHex, publicKeyFor } from '../anchor/index.ts';
import { ConfigError, loadConfig, type AnchorlineConfig } from '../config/index.ts';
import { AUDIT_CHECK_NAMES, auditLedger, configuredBlobStore, openToolDatabase, type AuditReport } from '../store/index.ts';
import { loadSigningKey } from '../workers/index.ts';

export const AUDIT_USAGE = `usage: anchorline audit [--config <file>] [--json] [--max-findings <n>] [--blobs <n|all|none>]

Re-hashes every provenance leaf, stored resource version, inbox message, mapping configuration and batch header
in the engine's database, recomputes the log against its stored nodes, signed checkpoints and witness cosignatures,
checks the DICOM blobs inbox messages name, and reports every mismatch.
  --config <file>      JSON config file (also ANCHORLINE_CONFIG), as for start; environment variables override it
  --json               print the report as JSON
  --max-findings <n>   list at most n findings (default 1000); all are counted
  --blobs <n|all|none> every blob is looked up and its size checked; re-hash n picked at random (default 100),
                       all of them, or skip blobs altogether (none)
Exit code 0 if nothing mismatches, 1 if anything does, 2 if the audit could not run.
`;

/** Where audit writes; the process streams in the CLI. */
export interface AuditOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: AuditOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** A usage problem: reported on stderr with exit code 2. */
class UsageError extends Error {}

/** Runs `audit` with the arguments after the command name; returns the exit code. */
export async function runAudit(argv: string[], output: AuditOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: CommandLine;
  let config: AnchorlineConfig;
  let maxFindings: number | undefined;
  let blobRehash: number | 'all' | 'none' = DEFAULT_BLOB_REHASH;
  try {
    values = parseCommandLine(argv);
    if (values.help) {
      output.out(AUDIT_USAGE);
      return 0;
    }
    if (values['max-findings'] !== undefined) {
      if (!/^\d+$/.test(values['max-findings'])) throw new UsageError('--max-findings needs a non-negative integer');
      maxFindings = Number(values['max-findings']);
    }
    if (values.blobs !== undefined) {
      if (values.blobs !== 'all' && values.blobs !== 'none' && !/^\d+$/.test(values.blobs)) throw new UsageError('--blobs needs a non-negative integer, all or none');
      blobRehash = values.blobs === 'all' || values.blobs === 'none' ? values.blobs : Number(values.blobs);
    }
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), env });
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(`anchorline audit: ${error.message}\n\n${AUDIT_USAGE}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      output.err(`anchorline audit: ${error.message}\n`);
      return 2;
    }
    throw error;
  }

  let report: AuditReport;
  try {
    const publicKey = await enginePublicKey(config);
    const database = await openToolDatabase(config, 'anchorline-audit');
    try {
      report = await auditLedger(database.pool, {
        ...(maxFindings !== undefined ? { maxFindings } : {}),
        ...(publicKey ? { publicKey } : {}),
        witnesses: config.anchor.witnesses,
        ...(blobRehash !== 'none' ? { blobs: configuredBlobStore(config), blobRehash } : {}),
      });
    } finally {
      await database.close();
    }
  } catch (error) {
    output.err(`anchorline audit: the audit could not run: ${(error as Error).message ?? String(error)}\n`);
    return 2;
  }

  if (values.json) output.out(JSON.stringify(report, null, 2) + '\n');
  else output.out(formatReport(report));
  return report.ok ? 0 : 1;
}

/** Blobs re-hashed when --blobs is not given: enough to catch wholesale tampering without reading the whole archive. */
const DEFAULT_BLOB_REHASH = 100;

interface CommandLine {
  config?: string;
  json?: boolean;
  'max-findings'?: string;
  blobs?: string;
  help?: boolean;
}

function parseCommandLine(argv: string[]): CommandLine {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, 'max-findings': { type: 'string' }, blobs: { type: 'string' }, help: { type: 'boolean' } },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return values;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}

/** The report as text: a line per check, each failing check's findings below it, and a summary. */
export function formatReport(report: AuditReport): string {
  const lines: string[] = [];
  for (const name of AUDIT_CHECK_NAMES) {
    const mismatches = report.mismatches[name];
    if (name === 'blob' && !report.blobsAudited) {
      lines.push('SKIP blob: --blobs none');
      continue;
    }
    if (mismatches === 0) {
      lines.push(`PASS ${name}: ${report.checked[name]} checked${name === 'blob' ? ` (${report.blobsRehashed} re-hashed)` : ''}`);
      continue;
    }
    lines.push(`FAIL ${name}: ${mismatches} ${mismatches === 1 ? 'mismatch' : 'mismatches'}`);
    for (const finding of report.findings) if (finding.check === name) lines.push(`  ${finding.ref}: ${finding.detail}`);
  }
  if (report.findingsOmitted > 0) lines.push(`${report.findingsOmitted} more findings not listed (raise --max-findings)`);
  if (report.erased.versions + report.erased.messages + report.erased.blobs > 0) {
    lines.push(`ERASED ${report.erased.versions} resource versions, ${report.erased.messages} raw messages, ${report.erased.blobs} DICOM blobs: their patient keys were destroyed (not mismatches)`);
  }
  const total = AUDIT_CHECK_NAMES.reduce((sum, name) => sum + report.mismatches[name], 0);
  const waiting = report.unbatchedLeaves > 0 ? ` (${report.unbatchedLeaves} leaves wait for the next checkpoint)` : '';
  lines.push(report.ok ? `audit clean${waiting}` : `audit FAILED: ${total} ${total === 1 ? 'mismatch' : 'mismatches'}${waiting}`);
  return lines.join('\n') + '\n';
}

/**
 * The hex public key of the engine's signing key, when its key file is here: batch headers must be signed with it,
 * and it is the key in every checkpoint's log key.
 */
async function enginePublicKey(config: AnchorlineConfig): Promise<string | undefined> {
  const keyFile = config.anchor.signingKeyFile ?? path.join(config.dataDir, 'anchor-signing.key');
  const signingKey = await loadSigningKey(keyFile, false);
  return signingKey ? bytesToHex(publicKeyFor(signingKey)) : undefined;
}

