/**
 * Patients' consents: reading the ones that decide (activeConsents), a cache of them for the API process
 * (ConsentCache), and the one transaction that writes a Consent through the FHIR API (writeConsent).
 *
 * Contract:
 * - `activeConsents` reads the current Consents whose search index says `patient` is the given patient and `status`
 *   is active, and keeps those consent/decide.ts enforces (scope patient-privacy, with a provision). Consents are
 *   stored like every other resource (history, search index, leaves); nothing here keeps a second copy.
 * - Every write of a Consent version NOTIFYs `consentChannel(schema)` with its patient in the writing transaction
 *   (migration 0019's trigger, whichever path writes), so a cache hears of it when it commits. A cache holds a
 *   patient's consents only while its LISTEN connection is up, for at most `ttlMs` (a backstop for anything missed),
 *   and drops everything when that connection is lost; a load that overlapped an invalidation is used once and not
 *   kept. So a read decided after a consent write's commit has been heard sees that write.
 * - `writeConsent` runs in the caller's transaction: it locks the current version, checks If-Match, stores the request
 *   body as a done inbox message (protocol fhir-rest), writes the new version and its BALP AuditEvent, and appends a
 *   leaf for each naming the body's SHA-256 and the write's mapping descriptor (recorded in mapping_config), so that
 *   `anchorline audit` re-checks them like any mapped version. A retried transaction may assume nothing of a failed one.
 */
import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { isEnforced } from '../consent/decide.ts';
import type { ConsentResource } from '../consent/types.ts';
import type { Logger } from '../config/logger.ts';
import { blindIndexOf } from './blind-index.ts';
import { BoundedCache } from './bounded-cache.ts';
import type { Queryable } from './db.ts';
import { patientsOf, restWriteAuditEvent, type AuditActor } from './audit-trail.ts';
import { writeApiResource } from './api-writes.ts';
import { changesPatient } from './compartment.ts';
import { openVersionRows, type VersionRow } from './keys.ts';
import type { StoredResource } from './resources.ts';

const CHANNEL_PREFIX = 'anchorline_consent_';

/** The NOTIFY channel of consent writes in `schema`, as migration 0019's trigger names it. */
export function consentChannel(schema: string): string {
  const channel = `${CHANNEL_PREFIX}${schema}`;
  // Identifiers longer than 63 bytes would be truncated by LISTEN but rejected by pg_notify.
  return Buffer.byteLength(channel) <= 63 ? channel : `${CHANNEL_PREFIX}${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

/**
 * The consents of `patient` (`Patient/x`) that decide access: current, active, patient-privacy, with a provision.
 * Each carries its id and meta.versionId, which decisions cite.
 */
export async function activeConsents(db: Queryable, patient: string): Promise<ConsentResource[]> {
  // The content goes through pg's JSON.parse, not the lossless parser: a decision reads codes, references and dates,
  // never a decimal, and every person's read may load consents.
  const blind = await blindIndexOf(db);
  const result = await db.query<{ content: ConsentResource }>({
    name: 'anchorline_active_consents',
    // The sealed columns too: a Consent is its patient's record, sealed under their key (store/keys.ts).
    text: `SELECT r.content, r.resource_type, r.id, r.version_id, r.sealed, r.key_id, r.key_wrapped, r.key_kek FROM fhir_resource r
            WHERE r.resource_type = 'Consent' AND NOT r.deleted
              AND r.id IN (SELECT t.id FROM fhir_search_token t WHERE t.resource_type = 'Consent' AND t.param = 'patient' AND t.code_hash = $1)
              AND EXISTS (SELECT 1 FROM fhir_search_token s WHERE s.resource_type = 'Consent' AND s.id = r.id AND s.param = 'status' AND s.code_hash = $2)
            ORDER BY r.id`,
    values: [blind.codeHash('patient', patient), blind.codeHash('status', 'active')],
  });
  await openVersionRows(db, result.rows as unknown as VersionRow[], { lossless: false });
  return result.rows.map((row) => row.content).filter(isEnforced);
}

export interface ConsentCacheOptions {
  /** Where consents are read; its connection settings (schema included) also open the LISTEN connection. */
  pool: pg.Pool;
  /** Longest a patient's consents are served without reading them again, in ms. Default 30000. */
  ttlMs?: number;
  /** Patients whose consents are kept at most; the least recently used go first. Default 10000. */
  maxPatients?: number;
  log?: Logger;
}

interface Entry {
  consents: readonly ConsentResource[];
  loadedAt: number;
}

/**
 * Per-patient cache of activeConsents for the process that enforces consent on reads (see the contract above). It
 * starts listening at its first use, so a process that never decides on consent holds no connection for it.
 * Implements the gate's ConsentSource (api/consent-gate.ts): `consentsOf`.
 */
export class ConsentCache {
  private readonly pool: pg.Pool;
  private readonly ttlMs: number;
  private readonly log: Logger | undefined;
  /** Two generations of half of maxPatients each (store/bounded-cache.ts). */
  private readonly entries: BoundedCache<string, Entry>;
  private readonly loading = new Map<string, Promise<readonly ConsentResource[]>>();
  /** Counts invalidations: a load that saw it change while it ran is not kept. */
  private invalidations = 0;
  private listener: pg.Client | undefined;
  private listening = false;
  private starting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  /** Reads served from the cache and from the database, for tests and metrics. */
  readonly stats = { hits: 0, loads: 0 };

  constructor(options: ConsentCacheOptions) {
    this.pool = options.pool;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.entries = new BoundedCache(Math.ceil((options.maxPatients ?? 10_000) / 2));
    this.log = options.log;
  }

  /** The consents that decide for `patient` (`Patient/x`). The array is shared: do not change it. */
  consentsOf(patient: string): Promise<readonly ConsentResource[]> {
    const entry = this.entries.get(patient);
    if (entry !== undefined && this.listening && Date.now() - entry.loadedAt < this.ttlMs) {
      this.stats.hits += 1;
      return Promise.resolve(entry.consents);
    }
    if (!this.listening && !this.closed) void this.start();
    const pending = this.loading.get(patient);
    if (pending) return pending;
    const load: Promise<readonly ConsentResource[]> = this.load(patient).finally(() => {
      if (this.loading.get(patient) === load) this.loading.delete(patient);
    });
    this.loading.set(patient, load);
    return load;
  }

  /** Forgets `patient`'s consents (all patients' without an argument). */
  invalidate(patient?: string): void {
    this.invalidations += 1;
    if (patient === undefined || patient === '') {
      this.entries.clear();
      this.loading.clear();
    } else {
      this.entries.delete(patient);
      this.loading.delete(patient);
    }
  }

  /** Opens the LISTEN connection (at first use unless called). Resolves once listening, or once it has failed. */
  start(): Promise<void> {
    this.starting ??= this.connect().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.listening = false;
    this.entries.clear();
    const client = this.listener;
    this.listener = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async load(patient: string): Promise<readonly ConsentResource[]> {
    const before = this.invalidations;
    const consents = Object.freeze(await activeConsents(this.pool, patient));
    this.stats.loads += 1;
    if (this.listening && this.invalidations === before && !this.closed) {
      this.entries.set(patient, { consents, loadedAt: Date.now() });
    }
    return consents;
  }

  private async connect(): Promise<void> {
    if (this.closed || this.listening) return;
    const client = new pg.Client({ ...(this.pool.options as pg.ClientConfig), keepAlive: true });
    let lost = false;
    const onLost = (): void => {
      if (lost) return;
      lost = true;
      if (this.listener === client) this.listener = undefined;
      // Whatever was said while nobody listened is unknown: nothing cached can be trusted.
      this.listening = false;
      this.invalidate();
      client.end().catch(() => undefined);
      if (this.closed) return;
      const delayMs = Math.min(250 * 2 ** this.failures, 5_000);
      this.failures += 1;
      this.retryTimer = setTimeout(() => void this.start(), delayMs);
      this.retryTimer.unref();
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (message) => this.invalidate(message.payload ?? ''));
    try {
      await client.connect();
      const schema = (await client.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema;
      if (!schema) throw new Error('the connection has no current schema');
      await client.query(`LISTEN "${consentChannel(schema).replaceAll('"', '""')}"`);
    } catch (error) {
      if (this.failures === 0) this.log?.warn({ errorCode: (error as { code?: string }).code }, 'consent cache: cannot listen for consent changes; reading consents uncached meanwhile');
      onLost();
      return;
    }
    if (this.closed || lost) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    this.failures = 0;
    this.invalidate();
    this.listening = true;
  }
}

export interface ConsentWrite {
  /** The validated Consent, with its id (chosen by the route for a create, from the URL for an update). */
  content: Record<string, unknown>;
  /** 'create' (POST) refuses an id that exists; 'update' (PUT) creates or updates. */
  interaction: 'create' | 'update';
  /** If-Match: the version the writer expects to replace; a mismatch fails with 412. */
  expectedVersion?: number;
  /** The request body, stored as the version's source. */
  raw: Buffer;
  actor: AuditActor;
  /** Called when the id turns out to be new (an update that creates); throws to refuse. */
  onCreate?: () => void;
}

export interface ConsentWritten {
  stored: StoredResource;
  created: boolean;
  /** The inbox row holding the request body. */
  messageId: number;
  auditEventId: string;
}

/** Writes one Consent version in the caller's transaction (see the contract above). */
export async function writeConsent(client: pg.PoolClient, write: ConsentWrite, now: Date = new Date()): Promise<ConsentWritten> {
  const key = `Consent/${write.content.id as string}`;
  const written = await writeApiResource(client, {
    resourceType: 'Consent',
    content: write.content,
    interaction: write.interaction,
    ...(write.expectedVersion === undefined ? {} : { expectedVersion: write.expectedVersion }),
    raw: write.raw,
    actor: write.actor,
    check: (previous) => {
      if (previous === undefined) write.onCreate?.();
      else if (changesPatient(previous.content, write.content)) {
        throw new AnchorlineError('ANCHORLINE_ERR_STORE_PATIENT_CHANGED', `${key} is another patient's consent; a consent cannot be moved to another patient`);
      }
    },
    auditEvents: ({ stored, interaction, messageId }) => [
      restWriteAuditEvent({ interaction, actor: write.actor, written: { resourceType: 'Consent', id: stored.id, versionId: stored.versionId }, patients: patientsOf(stored.content), messageId }, now),
    ],
  }, now);
  return { stored: written.stored, created: written.created, messageId: written.messageId, auditEventId: written.auditEventIds[0]! };
}

/** A new Consent id, for a create. */
export function newConsentId(): string {
  return randomUUID();
}
