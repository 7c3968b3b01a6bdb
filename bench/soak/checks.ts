/**
 * What the soak proves at the end, from PostgreSQL, the chain and the senders' own records.
 *
 * For every message a sender got AA/CA for:
 * - stored: an accepted inbox_message row with its control id whose raw_sha256 is the SHA-256 of the bytes sent;
 * - mapped: that row is `done` and wrote at least one resource version (fhir_resource_history.source_message_id);
 *   a row still `queued` after the drain, `failed`, or `done` without versions counts as lost;
 * - mapped once: "double-applied" means the message's mapping took effect more than once. One application writes at
 *   most one version of each resource (workers/ingest.ts applyDrafts stages every draft of a resource into one
 *   version) and exactly one import AuditEvent (store/audit-trail.ts, a fresh id each time). So a message is
 *   double-applied when the history holds two versions of one resource from it, or two AuditEvents naming it;
 * - batched and anchored: every version it wrote has its ledger_leaf (one per version: the table's unique key),
 *   whose preimage names the message's raw SHA-256, the leaf is in a batch, and that batch is covered by a confirmed
 *   ledger_anchor (a confirmed anchor of batch n covers every batch up to n through the header chain).
 * For the chain: each batch has at most one confirmed anchor, and for each confirmed anchor the registry holds that
 * header hash for that batch and the recorded receipt is still in the recorded block.
 */
import pg from 'pg';
import type { Address, Hex } from 'viem';
import { RegistryClient } from '../../anchor/chain/registry.ts';
import type { PoisonOutcome, SentMessage } from './senders.ts';

export interface InboxRow {
  id: number;
  controlId: string | null;
  sha256: string;
  disposition: string;
  state: string;
  errorCode: string | null;
}

export interface MessageProblem {
  controlId: string;
  messageId?: number;
  reason: string;
}

export interface PoisonVerdict {
  outcome: PoisonOutcome;
  /** Inbox rows stored for it: disposition/state/error code. */
  rows: string[];
  /** 'refused' (AR/CR or a rejected row), 'dead-lettered' (accepted, then failed), or what else happened. */
  verdict: string;
  ok: boolean;
}

export interface CheckResult {
  sent: number;
  acknowledged: number;
  refused: number;
  unanswered: number;
  resends: number;
  lost: MessageProblem[];
  doubleApplied: MessageProblem[];
  unanchored: MessageProblem[];
  deadLettered: { normal: number; poison: number };
  poison: PoisonVerdict[];
  batches: { count: number; lastBatch: number; lastConfirmedAnchor: number; anchorsByState: Record<string, number> };
  chainProblems: string[];
}

/** Waits until nothing is queued, every leaf is batched and the last batch is anchored; false at the time limit. */
export async function waitForDrain(db: pg.Pool, timeoutMs: number, report: (line: string) => void): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let lastReport = 0;
  while (true) {
    const { rows } = await db.query<{ queued: number; unbatched: number; last_batch: number; last_anchored: number }>(`
      SELECT (SELECT count(*) FROM inbox_message WHERE state = 'queued')::int AS queued,
             (SELECT count(*) FROM ledger_leaf WHERE batch_number IS NULL)::int AS unbatched,
             (SELECT coalesce(greatest((SELECT max(number) FROM log_checkpoint), (SELECT max(batch_number) FROM ledger_batch)), -1))::int AS last_batch,
             (SELECT coalesce(max(batch_number), -1) FROM ledger_anchor WHERE state = 'confirmed')::int AS last_anchored`);
    const s = rows[0]!;
    const done = s.queued === 0 && s.unbatched === 0 && s.last_anchored >= s.last_batch;
    if (done) return true;
    if (Date.now() - lastReport > 10_000) {
      report(`draining: ${s.queued} queued, ${s.unbatched} leaves unbatched, batch ${s.last_batch} closed, batch ${s.last_anchored} anchored`);
      lastReport = Date.now();
    }
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

async function inboxRows(db: pg.Pool): Promise<Map<string, InboxRow[]>> {
  const { rows } = await db.query<{ id: string; control_id: string | null; sha: string; disposition: string; state: string; error_code: string | null }>(
    `SELECT id, control_id, encode(raw_sha256, 'hex') AS sha, disposition, state, error_code FROM inbox_message`,
  );
  const byControlId = new Map<string, InboxRow[]>();
  for (const r of rows) {
    const row: InboxRow = { id: Number(r.id), controlId: r.control_id, sha256: r.sha, disposition: r.disposition, state: r.state, errorCode: r.error_code };
    const key = r.control_id ?? '';
    const list = byControlId.get(key);
    if (list) list.push(row);
    else byControlId.set(key, [row]);
  }
  return byControlId;
}

interface Written {
  versions: number;
  audits: number;
  repeated: number;
}

async function versionsByMessage(db: pg.Pool): Promise<Map<number, Written>> {
  const { rows } = await db.query<{ id: string; versions: number; audits: number; repeated: number }>(`
    SELECT source_message_id AS id,
           count(*) FILTER (WHERE resource_type <> 'AuditEvent')::int AS versions,
           count(*) FILTER (WHERE resource_type = 'AuditEvent')::int AS audits,
           (count(*) FILTER (WHERE resource_type <> 'AuditEvent')
             - count(DISTINCT resource_type || '/' || id) FILTER (WHERE resource_type <> 'AuditEvent'))::int AS repeated
      FROM fhir_resource_history WHERE source_message_id IS NOT NULL GROUP BY source_message_id`);
  return new Map(rows.map((r) => [Number(r.id), { versions: r.versions, audits: r.audits, repeated: r.repeated }]));
}

interface LeafTrouble {
  missing: number;
  unbatched: number;
  unanchored: number;
  misattributed: number;
}

async function leafTroubles(db: pg.Pool, lastConfirmedAnchor: number): Promise<Map<number, LeafTrouble>> {
  const { rows } = await db.query<{ id: string } & LeafTrouble>(
    `SELECT h.source_message_id AS id,
            count(*) FILTER (WHERE l.id IS NULL)::int AS missing,
            count(*) FILTER (WHERE l.id IS NOT NULL AND l.batch_number IS NULL)::int AS unbatched,
            count(*) FILTER (WHERE l.batch_number > $1)::int AS unanchored,
            count(*) FILTER (WHERE l.preimage->>'rawSha256' <> encode(m.raw_sha256, 'hex'))::int AS misattributed
       FROM fhir_resource_history h
       JOIN inbox_message m ON m.id = h.source_message_id
       LEFT JOIN ledger_leaf l ON l.resource_type = h.resource_type AND l.resource_id = h.id AND l.version_id = h.version_id
      GROUP BY h.source_message_id
     HAVING count(*) FILTER (WHERE l.id IS NULL OR l.batch_number IS NULL OR l.batch_number > $1
                              OR l.preimage->>'rawSha256' <> encode(m.raw_sha256, 'hex')) > 0`,
    [lastConfirmedAnchor],
  );
  return new Map(rows.map((r) => [Number(r.id), { missing: r.missing, unbatched: r.unbatched, unanchored: r.unanchored, misattributed: r.misattributed }]));
}

async function batchSummary(db: pg.Pool): Promise<CheckResult['batches']> {
  const batches = (await db.query<{ n: number; last: number }>(`SELECT count(*)::int AS n, coalesce(max(batch_number), -1)::int AS last FROM ledger_batch`)).rows[0]!;
  const anchors = await db.query<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM ledger_anchor GROUP BY state`);
  const confirmed = (await db.query<{ last: number }>(`SELECT coalesce(max(batch_number), -1)::int AS last FROM ledger_anchor WHERE state = 'confirmed'`)).rows[0]!;
  return { count: batches.n, lastBatch: batches.last, lastConfirmedAnchor: confirmed.last, anchorsByState: Object.fromEntries(anchors.rows.map((r) => [r.state, r.n])) };
}

/** Each batch anchored at most once, and every confirmed anchor still on the chain as recorded. */
async function chainProblems(db: pg.Pool, rpcUrl: string, contract: Address): Promise<string[]> {
  const problems: string[] = [];
  const twice = await db.query<{ batch_number: string; n: number }>(`SELECT batch_number, count(*)::int AS n FROM ledger_anchor WHERE state = 'confirmed' GROUP BY batch_number HAVING count(*) > 1`);
  for (const r of twice.rows) problems.push(`batch ${r.batch_number} has ${r.n} confirmed anchors`);
  const registry = new RegistryClient({ rpcUrl, contract, requestTimeoutMs: 10_000 });
  const confirmed = await db.query<{ id: string; batch_number: string; header_hash: string; submitter: string; tx_hash: string; block_hash: string | null }>(
    `SELECT a.id, a.batch_number, a.header_hash, a.submitter, a.tx_hash, a.block_hash FROM ledger_anchor a WHERE a.state = 'confirmed' ORDER BY a.batch_number`,
  );
  for (const anchor of confirmed.rows) {
    try {
      const onChain = await registry.headerHashOf(anchor.submitter as Address, Number(anchor.batch_number));
      if (onChain.toLowerCase() !== `0x${anchor.header_hash.replace(/^0x/, '')}`.toLowerCase()) {
        problems.push(`anchor ${anchor.id} (batch ${anchor.batch_number}): the registry holds ${onChain}, the ledger ${anchor.header_hash}`);
      }
      const receipt = await registry.receipt(anchor.tx_hash as Hex);
      if (!receipt) problems.push(`anchor ${anchor.id} (batch ${anchor.batch_number}): transaction ${anchor.tx_hash} is no longer on the chain`);
      else if (anchor.block_hash && receipt.blockHash.toLowerCase() !== anchor.block_hash.toLowerCase()) {
        problems.push(`anchor ${anchor.id} (batch ${anchor.batch_number}): transaction now in block ${receipt.blockHash}, recorded ${anchor.block_hash}`);
      }
    } catch (error) {
      problems.push(`anchor ${anchor.id} (batch ${anchor.batch_number}): chain check failed: ${(error as Error).message.slice(0, 200)}`);
    }
  }
  return problems;
}

function classifyPoison(outcome: PoisonOutcome, rows: InboxRow[]): PoisonVerdict {
  const described = rows.map((r) => `${r.id}:${r.disposition}/${r.state}${r.errorCode ? `/${r.errorCode}` : ''}`);
  const accepted = rows.find((r) => r.disposition === 'accepted');
  const refusedAnswer = ['AR', 'CR'].includes(outcome.final);
  let verdict: string;
  let ok: boolean;
  if (outcome.expect === 'kept') {
    const intact = accepted?.state === 'done' && accepted.sha256 === outcome.sha256;
    return { outcome, rows: described, verdict: intact ? 'frame after the junk stored intact and mapped' : 'frame after the junk not stored intact and mapped', ok: intact };
  }
  if (accepted?.state === 'failed') {
    verdict = 'dead-lettered';
    ok = true;
  } else if (accepted?.state === 'done') {
    verdict = 'accepted and mapped';
    ok = false;
  } else if (accepted) {
    verdict = `accepted, still ${accepted.state}`;
    ok = false;
  } else if (refusedAnswer) {
    verdict = 'refused';
    ok = true;
  } else if (outcome.final === 'closed' && rows.length === 0 && !outcome.controlId) {
    // Noise with no header to answer to: dropping the connection is a refusal.
    verdict = 'refused (connection closed)';
    ok = true;
  } else {
    verdict = `answered ${outcome.final}`;
    ok = ['AR', 'CR'].includes(outcome.final);
  }
  if (accepted && accepted.sha256 !== outcome.sha256 && outcome.controlId) verdict += ' (stored bytes differ from the payload sent)';
  return { outcome, rows: described, verdict, ok };
}

export async function runChecks(options: { db: pg.Pool; messages: SentMessage[]; poison: PoisonOutcome[]; rpcUrl: string; contract: Address }): Promise<CheckResult> {
  const { db, messages, poison } = options;
  const batches = await batchSummary(db);
  const inbox = await inboxRows(db);
  const written = await versionsByMessage(db);
  const leaves = await leafTroubles(db, batches.lastConfirmedAnchor);
  const result: CheckResult = {
    sent: messages.length,
    acknowledged: 0,
    refused: 0,
    unanswered: 0,
    resends: 0,
    lost: [],
    doubleApplied: [],
    unanchored: [],
    deadLettered: { normal: 0, poison: 0 },
    poison: [],
    batches,
    chainProblems: [],
  };
  for (const message of messages) {
    result.resends += message.attempts > 1 ? message.attempts - 1 : 0;
    if (message.ackCode === 'AR' || message.ackCode === 'CR') result.refused += 1;
    if (message.ackCode === undefined) result.unanswered += 1;
    if (message.ackCode !== 'AA' && message.ackCode !== 'CA') continue;
    result.acknowledged += 1;
    const rows = inbox.get(message.controlId) ?? [];
    const row = rows.find((r) => r.disposition === 'accepted');
    const problem = (reason: string): MessageProblem => ({ controlId: message.controlId, ...(row ? { messageId: row.id } : {}), reason });
    if (!row) {
      result.lost.push(problem(rows.length > 0 ? `no accepted row (rows: ${rows.map((r) => `${r.id}:${r.disposition}`).join(', ')})` : 'not in inbox_message'));
      continue;
    }
    if (row.sha256 !== message.sha256) {
      result.lost.push(problem('raw_sha256 differs from the bytes sent'));
      continue;
    }
    if (row.state === 'failed') result.deadLettered.normal += 1;
    if (row.state !== 'done') {
      result.lost.push(problem(`state ${row.state}${row.errorCode ? ` (${row.errorCode})` : ''}`));
      continue;
    }
    const w = written.get(row.id);
    if (!w || w.versions === 0) {
      result.lost.push(problem('done, but no resource version names it'));
      continue;
    }
    if (w.repeated > 0 || w.audits > 1) {
      result.doubleApplied.push(problem(`${w.repeated} resource(s) with more than one version from it, ${w.audits} import AuditEvents`));
    }
    const leaf = leaves.get(row.id);
    if (leaf) {
      if (leaf.missing > 0 || leaf.misattributed > 0) result.lost.push(problem(`${leaf.missing} version(s) without a leaf, ${leaf.misattributed} leaf(s) naming other bytes`));
      if (leaf.unbatched > 0 || leaf.unanchored > 0) result.unanchored.push(problem(`${leaf.unbatched} leaf(s) unbatched, ${leaf.unanchored} in batches after the last confirmed anchor`));
    }
  }
  for (const outcome of poison) {
    const rows = outcome.controlId ? (inbox.get(outcome.controlId) ?? []) : [];
    const verdict = classifyPoison(outcome, rows);
    if (verdict.verdict === 'dead-lettered') result.deadLettered.poison += 1;
    result.poison.push(verdict);
  }
  result.chainProblems = await chainProblems(db, options.rpcUrl, options.contract);
  return result;
}
