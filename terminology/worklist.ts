/**
 * The unmapped-code worklist: codes that arrived in a mapped source system without a mapping (recorded by the
 * ingest enricher), and resolving one: the mapping is added to a new version of the ConceptMap, the code is marked
 * resolved, and the messages that carried it are mapped again so that their resources gain the standard coding.
 *
 * Re-mapping sets those messages back to `queued`; the sweeper re-enqueues queued messages (they are older than its
 * staleAfterMs), and ingest maps them like new ones, writing new resource versions whose provenance leaves record
 * the new terminology version. Only messages that were `done` are re-queued: failed ones failed for another reason.
 */
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { withTransaction, type Queryable } from '../store/index.ts';
import { EQUIVALENCES, normaliseFhirConceptMap, type ConceptMapGroup, type ConceptMapResource, type Equivalence } from './concept-maps.ts';
import { activeMapsFromSource, lockMap, readConceptMap, storeConceptMap } from './concept-map-store.ts';

export interface UnmappedCode {
  system: string;
  code: string;
  display: string | null;
  /** The mapping configuration (source) the code came through. */
  source: string;
  occurrences: number;
  /** Messages that carried it and are waiting for a mapping. */
  messages: number;
  firstSeen: Date;
  lastSeen: Date;
  resolvedAt: Date | null;
}

export interface UnmappedFilter {
  source?: string;
  system?: string;
  /** false (default): open codes; true: resolved ones; 'any': both. */
  resolved?: boolean | 'any';
  count?: number;
  offset?: number;
}

/** The worklist, most frequent first. */
export async function listUnmapped(db: Queryable, filter: UnmappedFilter = {}): Promise<{ total: number; codes: UnmappedCode[] }> {
  const resolved = filter.resolved ?? false;
  const where = `($1::text IS NULL OR u.source = $1) AND ($2::text IS NULL OR u.system = $2)
     AND (CASE $3::text WHEN 'open' THEN u.resolved_at IS NULL WHEN 'resolved' THEN u.resolved_at IS NOT NULL ELSE true END)`;
  const params = [filter.source ?? null, filter.system ?? null, resolved === 'any' ? 'any' : resolved ? 'resolved' : 'open'];
  const result = await db.query<{
    system: string; code: string; display: string | null; source: string; occurrences: number; messages: number;
    first_seen: Date; last_seen: Date; resolved_at: Date | null; total: number;
  }>(
    `SELECT u.system, u.code, u.display, u.source, u.occurrences, u.first_seen, u.last_seen, u.resolved_at,
            (SELECT count(*) FROM unmapped_code_message m WHERE m.system = u.system AND m.code = u.code) AS messages,
            count(*) OVER () AS total
       FROM unmapped_code u WHERE ${where}
      ORDER BY u.occurrences DESC, u.last_seen DESC, u.system, u.code, u.source
      LIMIT $4 OFFSET $5`,
    [...params, filter.count ?? 100, filter.offset ?? 0],
  );
  let total = result.rows[0]?.total ?? 0;
  if (result.rows.length === 0 && (filter.offset ?? 0) > 0) {
    total = (await db.query<{ total: number }>(`SELECT count(*) AS total FROM unmapped_code u WHERE ${where}`, params)).rows[0]!.total;
  }
  return {
    total,
    codes: result.rows.map((r) => ({
      system: r.system,
      code: r.code,
      display: r.display,
      source: r.source,
      occurrences: r.occurrences,
      messages: r.messages,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      resolvedAt: r.resolved_at,
    })),
  };
}

export interface ResolveInput {
  system: string;
  code: string;
  target: { system: string; code: string; display?: string };
  /** The map to add the mapping to (its url). Needed only when several active maps translate `system`. */
  conceptMap?: string;
  /** Default 'equivalent'. */
  equivalence?: Equivalence;
}

export interface ResolveResult {
  conceptMap: { url: string; version: string; previousVersion: string };
  /** Worklist rows marked resolved (one per source the code came through). */
  resolved: number;
  /** Messages set back to queued, to be mapped again. */
  requeuedMessages: number;
}

/** Adds the mapping to a new version of the map, marks the code resolved and re-queues its messages; one transaction. */
export async function resolveUnmapped(pool: pg.Pool, input: ResolveInput): Promise<ResolveResult> {
  const equivalence = input.equivalence ?? 'equivalent';
  if (!(EQUIVALENCES as readonly string[]).includes(equivalence)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `equivalence must be one of ${EQUIVALENCES.join(', ')}`, { location: 'equivalence' });
  return withTransaction(pool, async (client) => {
    const url = await chooseMap(client, input);
    await lockMap(client, url);
    const current = await readConceptMap(client, url);
    if (!current) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `ConceptMap ${url} has no active version`, { location: 'conceptMap' });

    const next = withMapping(current, input, equivalence);
    let version = current.version;
    if (next !== current) {
      version = await nextVersion(client, url, current.version);
      const map = normaliseFhirConceptMap({ ...next, version, date: new Date().toISOString() });
      await storeConceptMap(client, map);
    }

    const resolved = await client.query('UPDATE unmapped_code SET resolved_at = now() WHERE system = $1 AND code = $2 AND resolved_at IS NULL', [input.system, input.code]);
    const requeued = await client.query<{ id: number }>(
      `WITH carried AS (DELETE FROM unmapped_code_message WHERE system = $1 AND code = $2 RETURNING message_id)
       UPDATE inbox_message SET state = 'queued'
        WHERE id IN (SELECT message_id FROM carried) AND state = 'done' AND disposition = 'accepted'
       RETURNING id`,
      [input.system, input.code],
    );
    return { conceptMap: { url, version, previousVersion: current.version }, resolved: resolved.rowCount ?? 0, requeuedMessages: requeued.rowCount ?? 0 };
  });
}

/** The active map the mapping goes into: the one named, else the only one translating the system (to that target). */
async function chooseMap(client: pg.PoolClient, input: ResolveInput): Promise<string> {
  if (input.conceptMap !== undefined) return input.conceptMap;
  const candidates = await activeMapsFromSource(client, input.system);
  if (candidates.length === 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no active ConceptMap translates ${input.system}; name one with conceptMap`, { location: 'conceptMap' });
  }
  const toTarget = candidates.filter((c) => c.targetSystems.includes(input.target.system));
  const chosen = toTarget.length === 1 ? toTarget : candidates.length === 1 ? candidates : [];
  if (chosen.length !== 1) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `several active ConceptMaps translate ${input.system} (${candidates.map((c) => c.url).join(', ')}); name one with conceptMap`, { location: 'conceptMap' });
  }
  return chosen[0]!.url;
}

/** The map with the mapping added; the same object when it maps the code to that target already. */
function withMapping(map: ConceptMapResource, input: ResolveInput, equivalence: Equivalence): ConceptMapResource {
  const groups: ConceptMapGroup[] = structuredClone(map.group);
  let group = groups.find((g) => g.source === input.system && g.target === input.target.system);
  if (!group) groups.push((group = { source: input.system, target: input.target.system, element: [] }));
  let element = group.element.find((e) => e.code === input.code);
  if (element?.target.some((t) => t.code === input.target.code)) return map;
  if (!element) group.element.push((element = { code: input.code, target: [] }));
  // An entry saying the code has no match is superseded by the mapping.
  element.target = element.target.filter((t) => t.code !== undefined);
  element.target.push({ code: input.target.code, ...(input.target.display ? { display: input.target.display } : {}), equivalence });
  return { ...map, group: groups };
}

/** `<version>+1`, `+2`, ...: the first not stored yet. A version loaded from a file keeps its own name. */
async function nextVersion(client: pg.PoolClient, url: string, version: string): Promise<string> {
  const match = /^(.*)\+(\d+)$/.exec(version);
  const base = match ? match[1]! : version;
  let n = match ? Number(match[2]) + 1 : 1;
  const taken = new Set((await client.query<{ version: string }>('SELECT version FROM concept_map WHERE url = $1', [url])).rows.map((r) => r.version));
  while (taken.has(`${base}+${n}`)) n++;
  return `${base}+${n}`;
}
