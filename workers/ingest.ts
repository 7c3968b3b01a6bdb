/**
 * The ingest job: inbox messages -> FHIR resources.
 *
 * A job carries only the inbox id. Jobs that run at the same time in one worker are mapped together in one
 * transaction (a group commit, as at intake): each round trip to PostgreSQL costs about as much as mapping a
 * message, so a batch of messages shares six of them instead of paying seven each. Within the transaction: lock the
 * inbox rows (skipping any already finished, so a job delivered twice has one effect), decode by MSH-18, parse, map,
 * merge each draft into the current version of its resource (several messages for one resource apply in arrival
 * order), write the new versions, and mark the messages done, all or nothing.
 *
 * The current versions are read without locks, and only those the batch changes are locked, just before they are
 * written, with a check that none moved on meanwhile (confirmRead). Most resources a message names it leaves as
 * they are (the sending facility, the ward, the attending doctor of every message from that ward): locked for the
 * whole batch, as they were, they made concurrent batches (in one process, or in several worker processes) wait for
 * each other, so that a second worker process mapped barely faster than one. A resource that did move on is rare (two
 * batches changing one resource at once): the batch is mapped again from the start, holding every lock from the first
 * read, as before. A resource read but left unchanged may change in another batch before this one commits; that is
 * the outcome of this batch having run first, which event-time ordering makes no different from the other order.
 *
 * A message that cannot be mapped (a permanent, coded error) is marked failed with its code in the same batch, and is
 * not retried. Anything else (database unavailable, a write collision with another worker) fails the batch: every
 * job in it is thrown back to the queue, and a job on its second attempt runs in a batch of its own, so one poison
 * message cannot keep failing its neighbours.
 *
 * The transaction commits with synchronous_commit off. That is safe here: the raw message was committed durably at
 * intake, and an asynchronously committed mapping can only be lost together with the message's `done` state (WAL is
 * replayed in order), in which case the sweeper maps it again. Any later synchronous commit flushes it anyway.
 */
import type pg from 'pg';
import { AnchorlineError, isAnchorlineError, ackCodeFor } from '../errors/index.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import { decodeHl7Bytes, encodeAck, isEnhancedMode, parseHl7, type AckCode, type Hl7Limits, type MshHeader } from '../formats/hl7v2/index.ts';
import { isDeepStrictEqual } from 'node:util';
import {
  CHARSET_FALLBACK_ISSUE,
  deterministicId,
  mapHl7Message,
  checkMappedResource,
  mergeDraft,
  type Hl7MappingOptions,
  type MappingIssue,
  type MappingResult,
  type DocumentPlan,
  type PatientMerge,
  type ResourceDraft,
} from '../mappers/index.ts';
import { auditTrail, compartment, encryption, inbox, knownPatientOf, ledger, mappingConfigs, refusedForItsValues, resources, withTransaction, type InboxMessage, type MessagePatientReader, type StoredResource } from '../store/index.ts';
import { bytesToHex, isLosslessNumber, newSalt, provenanceLeafHash, resourceSha256, type LeafPreimage } from '../anchor/index.ts';
import type { MessageResult } from '../store/inbox.ts';
import { documentBundleKey, documentBundleVersion } from './document-bundle.ts';
import { boundSourceOf } from './origin.ts';
import type { MappingPacer } from './pacing.ts';
import type { JobContext, JobData, JobHandler } from '../queue/index.ts';
import type { IngestMetrics } from '../observability/types.ts';

/** The mapping configuration that applies to a message, and its version. */
export interface MappingSelection {
  /** The configuration's name: the source system it is for ('default' for the engine's own settings). */
  name: string;
  /** Lowercase hex SHA-256 of the canonical content: the version recorded on messages, resources and leaves. */
  sha256: string;
  /** The canonical content, stored in mapping_config under sha256 so that an audit can re-hash it. */
  content: unknown;
  /** What the mappers get. */
  options: Hl7MappingOptions;
}

/** Chooses the mapping configuration of each message (by its sending application and facility). */
export interface MappingSource {
  select(header: MshHeader | undefined): MappingSelection;
}

/**
 * The header a mapping configuration is selected by, for an input that has no MSH (a C-CDA document, a DICOM
 * instance): its sending application and facility as MSH-3/MSH-4 would carry them, everything else empty.
 */
export function selectionHeader(sender: { application?: string; facility?: string; messageType: string; controlId: string }): MshHeader {
  return {
    encoding: { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' },
    sendingApplication: sender.application ?? '',
    sendingFacility: sender.facility ?? '',
    receivingApplication: '',
    receivingFacility: '',
    messageDateTime: '',
    messageType: sender.messageType,
    triggerEvent: '',
    messageStructure: '',
    controlId: sender.controlId,
    processingId: '',
    versionId: '',
    acceptAckType: '',
    applicationAckType: '',
    characterSet: '',
  };
}

/** One configuration for every message: the engine's `mapping` settings. */
export function staticMappingSource(options: Hl7MappingOptions, name = 'default'): MappingSource {
  const selection: MappingSelection = { name, sha256: mappingConfigs.mappingConfigSha256(options), content: options, options };
  return { select: () => selection };
}

/**
 * Terminology applied to mapped drafts inside the ingest transaction: local codings gain the standard codings their
 * ConceptMaps give, and codes without a mapping go to the unmapped-code worklist (they never fail the message).
 */
export interface TerminologyEnricher {
  /** Changes the drafts in place; returns the terminology version the leaves of these drafts record. */
  enrich(client: pg.PoolClient, items: Array<{ messageId: number; mapping: MappingSelection; drafts: ResourceDraft[] }>): Promise<string>;
}

/**
 * Turns one stored inbound message of a protocol other than HL7 v2 ('cda', 'dicom') into resource drafts, which then
 * take the same path as an HL7 message's: terminology, ordering, validation, versions, leaves. Pure apart from
 * reading what the message references; throws AnchorlineError for the message's own problems.
 */
export interface MessageConverter {
  convert(message: InboxMessage, mappings: MappingSource): { mapping: MappingSelection; result: MappingResult };
}

export interface IngestOptions {
  pool: pg.Pool;
  log: Logger;
  mappings: MappingSource;
  /** Converters by inbox protocol, for messages that are not HL7 v2. */
  converters?: Record<string, MessageConverter>;
  /** Absent: codings stay as the mapper made them, and leaves say terminologyVersion 'none'. */
  terminology?: TerminologyEnricher;
  /** Store the ACK after mapping and notify waiters (original-mode messages when ackMode is 'afterMapping'). */
  ackAfterMapping: boolean;
  defaultCharset: string;
  engineApplication: string;
  /** Attempts after which a still-failing message is marked failed instead of thrown back to the queue. */
  maxAttempts: number;
  /**
   * Attempts that never ended (the worker crashed or was killed mid-attempt) after which a message is moved to the
   * dead letters instead of being processed again. Default 3 (config workers.maxCrashedAttempts).
   */
  maxCrashedAttempts?: number;
  /** Messages mapped in one transaction at most. Default 100. */
  maxBatchMessages?: number;
  /** Batches (transactions) one process runs at once. Default 1 (DEFAULT_BATCHES_IN_FLIGHT). */
  batchesInFlight?: number;
  /** Rests after each batch while the engine's intake is pressed (workers/pacing.ts); absent: never rests. */
  pacer?: MappingPacer;
  /** Counts messages marked failed, by code; absent: nothing is counted. */
  metrics?: IngestMetrics;
  /** Caps on a message's parsed structure (config `hl7v2`, as the intake checked them); absent: the defaults. */
  hl7Limits?: Hl7Limits;
  /**
   * Reads the patient identifiers of a message that failed mapping (workers/message-patients.ts), so that its key
   * can go under the key of the stored patient they name. Absent: only messages whose mapping named a patient are
   * attributed.
   */
  messagePatients?: MessagePatientReader;
}

export interface IngestOutcome {
  status: 'mapped' | 'failed' | 'skipped';
  resources: Array<{ resourceType: string; id: string; versionId: number }>;
}

/**
 * Maps a batch of messages; returns one outcome per id (in the order given).
 *
 * Each message's attempt is counted, committed, before its batch's transaction opens. An attempt that never ended
 * (the worker died of heap exhaustion, was killed by its stall watchdog, or was killed from outside) thus stays on
 * record, and when the message comes back:
 * - after `maxCrashedAttempts` such attempts it is moved to the dead letters (ANCHORLINE_ERR_MESSAGE_POISON) and
 *   never picked up again automatically; the engine and its other messages carry on;
 * - after fewer, it runs alone, so that it cannot take a batch of healthy neighbours down with it again.
 * A value the store refuses for what it is (SQLSTATE classes 22 and 23: a NUL in text, an out-of-range number, a
 * violated constraint) fails the same way on every try: the batch is split and each message tried alone, and the one
 * refused is failed once with ANCHORLINE_ERR_STORE_REFUSED_VALUE instead of being retried.
 */
export async function ingestMessages(options: IngestOptions, messageIds: number[], runAlone: ReadonlySet<number> = new Set()): Promise<IngestOutcome[]> {
  const outcomes = new Map<number, IngestOutcome>(messageIds.map((id) => [id, { status: 'skipped', resources: [] }]));
  const record = (ids: number[], results: IngestOutcome[]): void => ids.forEach((id, i) => outcomes.set(id, results[i]!));
  // Counted now: the messages that run together. The rest are counted one by one, just before each runs alone.
  const starts = await inbox.startAttempts(options.pool, messageIds, { onlyUncrashed: true, holdBack: [...runAlone] });
  const limit = options.maxCrashedAttempts ?? DEFAULT_MAX_CRASHED_ATTEMPTS;
  const together: number[] = [];
  const alone: number[] = [];
  const poisoned = new Map<number, AnchorlineError>();
  for (const [id, { crashed, started }] of starts) {
    if (crashed >= limit) {
      poisoned.set(id, new AnchorlineError('ANCHORLINE_ERR_MESSAGE_POISON', `processing crashed or stalled its worker ${crashed} times`));
      options.log.error({ messageId: id, crashedAttempts: crashed }, 'ingest: message moved to the dead letters after repeated worker crashes');
    } else if (started) together.push(id);
    else alone.push(id);
  }
  if (poisoned.size > 0) {
    await inbox.startAttempts(options.pool, [...poisoned.keys()]);
    record([...poisoned.keys()], await mapBatch(options, [...poisoned.keys()], poisoned));
  }
  if (together.length > 0) record(together, await mapBatchOrSplit(options, together));
  for (const id of alone) {
    if (!(await inbox.startAttempts(options.pool, [id])).has(id)) continue;
    record([id], await mapBatchOrSplit(options, [id]));
  }
  return messageIds.map((id) => outcomes.get(id)!);
}

/** Attempts that never ended after which a message goes to the dead letters (config workers.maxCrashedAttempts). */
export const DEFAULT_MAX_CRASHED_ATTEMPTS = 3;

/** mapBatch, with a batch the store refused for one of its values split into messages tried alone. */
async function mapBatchOrSplit(options: IngestOptions, messageIds: number[]): Promise<IngestOutcome[]> {
  try {
    return await mapBatch(options, messageIds);
  } catch (error) {
    const refused = storeRefusal(error);
    if (!refused) throw error;
    if (messageIds.length > 1) {
      options.log.warn({ messages: messageIds.length, sqlState: refused.sqlState }, 'ingest: the store refused a value in a batch; mapping its messages one by one');
      const results: IngestOutcome[] = [];
      for (const id of messageIds) results.push(...(await mapBatchOrSplit(options, [id])));
      return results;
    }
    options.log.warn({ messageId: messageIds[0], sqlState: refused.sqlState }, 'ingest: the store refused a mapped value');
    return mapBatch(options, messageIds, new Map([[messageIds[0]!, refused.error]]));
  }
}

/** A database error that the same input raises every time (store/db.ts refusedForItsValues), as a coded refusal. */
function storeRefusal(error: unknown): { sqlState: string; error: AnchorlineError } | undefined {
  const sqlState = refusedForItsValues(error);
  if (sqlState === undefined) return undefined;
  // The server's message may quote the value it refused: only the SQLSTATE goes into the detail.
  return { sqlState, error: new AnchorlineError('ANCHORLINE_ERR_STORE_REFUSED_VALUE', `the store refused a mapped value (SQLSTATE ${sqlState})`) };
}

/**
 * Maps a batch of messages in one transaction; returns one outcome per id (in the order given). A message named in
 * `refuse` is not mapped: it is failed with that error, its ACK (after mapping) saying so.
 */
async function mapBatch(options: IngestOptions, messageIds: number[], refuse?: ReadonlyMap<number, AnchorlineError>): Promise<IngestOutcome[]> {
  try {
    return await mapBatchOnce(options, messageIds, refuse, false);
  } catch (error) {
    if (!(error instanceof ChangedMeanwhile)) throw error;
    options.log.debug({ messages: messageIds.length }, 'ingest: a resource the batch changes moved on while it was mapped; mapping the batch again under locks');
    return mapBatchOnce(options, messageIds, refuse, true);
  }
}

/** A resource a batch read without locking it and then changed had a newer version by the time it was locked. */
class ChangedMeanwhile extends Error {}

/**
 * Locks every resource the batch writes (in key order, so that concurrent batches cannot deadlock on each other) and
 * checks that each is still at the version the batch read and merged onto; throws ChangedMeanwhile if one is not. A
 * resource the batch creates must still be absent: one another batch created meanwhile is a change too.
 */
async function confirmRead(client: pg.PoolClient, versions: Version[], read: ReadonlyMap<string, StoredResource>): Promise<void> {
  const keys = new Map<string, { resourceType: string; id: string }>();
  for (const { stored } of versions) keys.set(`${stored.resourceType}/${stored.id}`, { resourceType: stored.resourceType, id: stored.id });
  const locked = await resources.lockVersions(client, [...keys.values()]);
  for (const key of keys.keys()) if (locked.get(key) !== read.get(key)?.versionId) throw new ChangedMeanwhile();
}

/**
 * One try of mapBatch. `lockFirst`: lock every resource the messages name before reading it (the try after a
 * ChangedMeanwhile, which therefore cannot end in one again); else read them unlocked and confirmRead what changes.
 */
async function mapBatchOnce(options: IngestOptions, messageIds: number[], refuse: ReadonlyMap<number, AnchorlineError> | undefined, lockFirst: boolean): Promise<IngestOutcome[]> {
  let mappingsRecorded: string[] = [];
  let failureCodes: string[] = [];
  let issueCodes: string[] = [];
  const outcomes = await withTransaction(
    options.pool,
    async (client) => {
      const outcomes = new Map<number, IngestOutcome>(messageIds.map((id) => [id, { status: 'skipped', resources: [] }]));
      issueCodes = [];
      const messages = (await inbox.lockMessages(client, messageIds)).filter((m) => m.disposition === 'accepted' && m.state === 'queued');
      if (messages.length === 0) return messageIds.map((id) => outcomes.get(id)!);

      const mapped: Mapped[] = [];
      // Messages that failed before their mapping named anyone (not the dead letters: reading one may be what crashed).
      const unmapped: InboxMessage[] = [];
      const results: MessageResult[] = [];
      for (const message of messages) {
        let header: MshHeader | undefined;
        let charset = 'utf-8';
        let declaredCharsetIgnored = false;
        try {
          let mapping: MappingSelection;
          let result: MappingResult;
          const refusal = refuse?.get(message.id);
          if (refusal) {
            if (message.protocol.startsWith('hl7v2')) {
              try {
                ({ header, charset } = decodeHl7Bytes(message.raw, options.defaultCharset));
              } catch {
                // Without a readable header the refusal is recorded all the same, with no ACK to store.
              }
            }
            throw refusal;
          }
          // HL7 v2 arrives as 'hl7v2-mllp' or 'hl7v2-http'; other protocols name their converter.
          if (message.protocol.startsWith('hl7v2')) {
            const decoded = decodeHl7Bytes(message.raw, options.defaultCharset);
            declaredCharsetIgnored = decoded.declaredCharsetIgnored === true;
            header = decoded.header;
            charset = decoded.charset;
            mapping = options.mappings.select(header);
            const bound = boundSourceOf(message.source);
            // Per message: the source it is bound to, and its bytes' hash for its Provenance.
            const rawSha256 = bytesToHex(message.rawSha256);
            result = mapHl7Message(parseHl7(decoded.text, options.hl7Limits), { ...mapping.options, rawSha256, ...(bound === undefined ? {} : { boundSource: bound }) });
          } else {
            const converter = options.converters?.[message.protocol];
            if (!converter) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', `no converter for protocol ${message.protocol}`);
            ({ mapping, result } = converter.convert(message, options.mappings));
          }
          const issues = [...(result.issues ?? [])];
          if (declaredCharsetIgnored) issues.unshift({ ...CHARSET_FALLBACK_ISSUE });
          assertNoFatalIssue(issues, mapping.options.fatalIssues);
          mapped.push({ message, header, charset, mapping, drafts: result.drafts, merges: result.merges ?? [], eventTime: result.eventTime === undefined ? undefined : new Date(result.eventTime), issues, document: result.document });
        } catch (error) {
          if (!isAnchorlineError(error) || error.retryable) throw error;
          results.push({ id: message.id, state: 'failed', errorCode: error.code, errorDetail: error.detail, ack: wantsAck(options, header) ? ackFor(options, header, charset, error) : undefined });
          if (error.code !== 'ANCHORLINE_ERR_MESSAGE_POISON') unmapped.push(message);
          outcomes.set(message.id, { status: 'failed', resources: [] });
          options.log.warn({ messageId: message.id, code: error.code, location: error.location }, 'ingest: message could not be mapped');
        }
      }

      const terminologyVersion = options.terminology && mapped.length > 0
        ? await options.terminology.enrich(client, mapped.map(({ message, mapping, drafts }) => ({ messageId: message.id, mapping, drafts })))
        : 'none';

      const keys = new Map<string, { resourceType: string; id: string }>();
      for (const { drafts } of mapped) for (const d of drafts) keys.set(`${d.resourceType}/${d.id}`, { resourceType: d.resourceType, id: d.id });
      for (const { document } of mapped) if (document) keys.set(`Bundle/${documentBundleKey(document).id}`, documentBundleKey(document));
      // lockCurrent takes the row locks in key order, so concurrent batches cannot deadlock on each other.
      const stored: Map<string, StoredResource> = await (lockFirst ? resources.lockCurrent : resources.readCurrentMany)(client, [...keys.values()]);
      const latest = new Map(stored);
      const versions: Version[] = [];
      const now = new Date();
      for (const item of mapped) {
        const { message, header, charset, mapping } = item;
        let written: IngestOutcome['resources'];
        try {
          const renamed = await keepPatientsApart(client, item, stored, latest);
          const mergeDrafts: ResourceDraft[] = [];
          for (const merge of item.merges) for (const each of await patientMergeDrafts(client, merge, stored, latest)) mergeDrafts.push(each);
          const mergeKeys = new Set(mergeDrafts.map((draft) => `${draft.resourceType}/${draft.id}`));
          written = applyDrafts(mergeDrafts.length === 0 ? item : { ...item, drafts: [...item.drafts, ...mergeDrafts] }, latest, versions, now, mergeKeys);
          // A document's Bundle holds the versions just written, so it comes after them (workers/document-bundle.ts).
          const bundle = item.document && (await documentBundleVersion(client, item.document, renamed, stored, latest, now, item.eventTime));
          if (bundle) {
            versions.push({ stored: bundle, sourceMessageId: message.id, mapping });
            written.push({ resourceType: bundle.resourceType, id: bundle.id, versionId: bundle.versionId });
          }
        } catch (error) {
          if (!isAnchorlineError(error) || error.retryable) throw error;
          results.push({ id: message.id, state: 'failed', errorCode: error.code, errorDetail: error.detail, ack: wantsAck(options, header) ? ackFor(options, header, charset, error, mapping) : undefined });
          outcomes.set(message.id, { status: 'failed', resources: [] });
          options.log.warn({ messageId: message.id, code: error.code }, 'ingest: mapped resources were refused');
          continue;
        }
        results.push({
          id: message.id,
          state: 'done',
          mappingSha256: mapping.sha256,
          mappingIssues: item.issues,
          ack: wantsAck(options, header) ? ackFor(options, header, charset, undefined, mapping, item.issues) : undefined,
        });
        for (const issue of item.issues) issueCodes.push(issue.code);
        outcomes.set(message.id, { status: 'mapped', resources: written });
      }
      if (!lockFirst) await confirmRead(client, versions, stored);
      // The AuditEvent of each message's import goes into the same statements as the versions it records.
      const audits = auditTrail.auditVersions(importAudits(versions, mapped, terminologyVersion, now));
      const patientKeys = await resources.writeVersions(client, [...versions.map((v) => ({ ...v, mappingSha256: v.mapping.sha256 })), ...audits.versions], stored);
      await rewrapMessageKeys(client, options, results, mapped, unmapped, versions, patientKeys);
      mappingsRecorded = await recordMappingsOnce(client, options.pool, versions.map((v) => v.mapping));
      await ledger.appendLeaves(client, [...provenanceLeaves(versions, mapped, terminologyVersion), ...audits.leaves]);
      await inbox.finishMessages(client, results);
      failureCodes = results.flatMap((r) => (r.state === 'failed' && r.errorCode ? [r.errorCode] : []));
      // NOTIFY serialises committing transactions on a global lock, so it is only sent when someone may be waiting.
      if (options.ackAfterMapping) {
        await client.query('SELECT pg_notify($1, id::text) FROM unnest($2::bigint[]) AS id', [inbox.MESSAGE_DONE_CHANNEL, results.map((r) => r.id)]);
      }
      return messageIds.map((id) => outcomes.get(id)!);
    },
    { synchronousCommit: false, customPlans: true },
  );
  // Remembered only once committed: a rolled-back batch took its mapping_config rows with it.
  for (const digest of mappingsRecorded) rememberMappingRecorded(options.pool, digest);
  for (const code of failureCodes) options.metrics?.mappingFailed(code);
  for (const code of issueCodes) options.metrics?.mappingIssue(code);
  return outcomes;
}

/**
 * Moves each message's key (sealed at intake under the master key) under the key of the patient the message is
 * about, in the statement that finishes the message, so that erasing that patient also leaves the raw message (and a
 * DICOM instance's file) unreadable. Only the small key is re-wrapped: the raw bytes are not written again.
 *
 * The patient is, for a message that wrote versions of a patient, the one its first such version is sealed under
 * (the message's own patient: a merge's surviving patient). A message that wrote none (it failed, or mapped to
 * nothing new: a resend) is attributed only to a patient the store already holds (a current, not erased Patient),
 * never to one it would make up: the patient its drafts name, when its mapping got that far; else, for a message
 * that failed before, the one stored Patient its own identifiers name (options.messagePatients, compared through the
 * search index: store/message-patients.ts). A message attributed to no one stays under the master key, where an
 * erasure's scan looks for it (store/erasure.ts). Nothing of this is logged.
 */
async function rewrapMessageKeys(
  client: pg.PoolClient,
  options: IngestOptions,
  results: MessageResult[],
  mapped: Mapped[],
  unmapped: InboxMessage[],
  versions: Version[],
  patientKeys: ReadonlyMap<string, encryption.PatientKey>,
): Promise<void> {
  const patientOfMessage = new Map<number, string>();
  for (const { stored, sourceMessageId } of versions) {
    if (patientOfMessage.has(sourceMessageId)) continue;
    const patient = encryption.sealingPatientOf(stored.content);
    if (patient !== undefined) patientOfMessage.set(sourceMessageId, patient);
  }
  const keys = new Map(patientKeys);
  if (encryption.keyringOf(client)?.sealing) await attributeUnwritten(client, options, mapped, unmapped, patientOfMessage, keys);
  if (keys.size === 0) return;
  const messages = new Map([...mapped.map(({ message }): [number, InboxMessage] => [message.id, message]), ...unmapped.map((message): [number, InboxMessage] => [message.id, message])]);
  for (const result of results) {
    const message = messages.get(result.id);
    const patient = patientOfMessage.get(result.id);
    const key = patient === undefined ? undefined : keys.get(patient);
    if (message !== undefined && key !== undefined) result.rawKey = inbox.sealRawKey(message, key);
  }
}

/**
 * The patients of the batch's messages that wrote no version of one and are still under the master key (see
 * rewrapMessageKeys), added to `patientOfMessage`, with their keys added to `keys` (made for a stored patient whose
 * records predate encryption and who has none).
 */
async function attributeUnwritten(
  client: pg.PoolClient,
  options: IngestOptions,
  mapped: Mapped[],
  unmapped: InboxMessage[],
  patientOfMessage: Map<number, string>,
  keys: Map<string, encryption.PatientKey>,
): Promise<void> {
  const named = new Map<number, string>();
  for (const { message, drafts } of mapped) {
    if (patientOfMessage.has(message.id) || !inbox.underMasterKey(message)) continue;
    for (const draft of drafts) {
      const patient = encryption.sealingPatientOf(draft);
      if (patient === undefined) continue;
      named.set(message.id, patient);
      break;
    }
  }
  if (named.size > 0) {
    const ids = [...new Set(named.values())].filter((patient) => !keys.has(patient)).map((patient) => patient.slice('Patient/'.length));
    const stored = await client.query<{ id: string }>(`SELECT id FROM fhir_current WHERE resource_type = 'Patient' AND id = ANY($1::text[]) AND NOT deleted`, [ids]);
    const known = new Set(stored.rows.map((row) => `Patient/${row.id}`));
    for (const [messageId, patient] of named) if (keys.has(patient) || known.has(patient)) patientOfMessage.set(messageId, patient);
  }
  if (options.messagePatients !== undefined) {
    for (const message of unmapped) {
      if (!inbox.underMasterKey(message)) continue;
      const found = options.messagePatients.read({ protocol: message.protocol, raw: message.raw, charset: message.charset, sender: message.sender, source: message.source });
      const patient = found === undefined || found.own.length === 0 ? undefined : await knownPatientOf(client, found.own);
      if (patient !== undefined) patientOfMessage.set(message.id, patient);
    }
  }
  const missing = [...new Set(patientOfMessage.values())].filter((patient) => !keys.has(patient));
  if (missing.length === 0) return;
  for (const [patient, key] of await encryption.keyringOf(client)!.patientKeys(client, missing)) keys.set(patient, key);
}

/**
 * Mapping digests known to be stored in mapping_config, per pool (a pool is one database and schema; keying by
 * digest alone would skip the row in a second schema served by the same process).
 */
const recordedMappings = new WeakMap<pg.Pool, Set<string>>();

/**
 * Stores the mapping configurations the leaves of this batch name, so that an audit can re-hash them. Only the first
 * batch of a process (per pool and configuration) pays the statement; the rest find the digest remembered. Returns
 * the digests it wrote, for the caller to remember once the transaction commits.
 */
async function recordMappingsOnce(client: pg.PoolClient, pool: pg.Pool, used: MappingSelection[]): Promise<string[]> {
  const known = recordedMappings.get(pool);
  const fresh = new Map<string, MappingSelection>();
  for (const selection of used) if (!known?.has(selection.sha256)) fresh.set(selection.sha256, selection);
  for (const selection of fresh.values()) await mappingConfigs.recordMappingConfig(client, selection.content);
  return [...fresh.keys()];
}

function rememberMappingRecorded(pool: pg.Pool, digest: string): void {
  let digests = recordedMappings.get(pool);
  if (!digests) recordedMappings.set(pool, (digests = new Set()));
  digests.add(digest);
}

/**
 * One provenance leaf per version written, in the same transaction: what the version is (its canonical hash), what
 * it came from (the raw message's hash) and how (mapping and terminology versions), salted per leaf.
 */
function provenanceLeaves(
  versions: Version[],
  mapped: Array<{ message: InboxMessage }>,
  terminologyVersion: string,
): ledger.NewLeaf[] {
  const rawHashes = new Map(mapped.map(({ message }) => [message.id, bytesToHex(message.rawSha256)]));
  return versions.map(({ stored, sourceMessageId, mapping }) => {
    const preimage: LeafPreimage = {
      v: 1,
      resourceType: stored.resourceType,
      id: stored.id,
      versionId: String(stored.versionId),
      resourceSha256: resourceSha256(stored.content),
      rawSha256: rawHashes.get(sourceMessageId)!,
      mappingSha256: mapping.sha256,
      terminologyVersion,
      salt: newSalt(),
    };
    return { resourceType: stored.resourceType, resourceId: stored.id, versionId: stored.versionId, preimage: { ...preimage }, leafHash: provenanceLeafHash(preimage) };
  });
}

interface Mapped {
  message: InboxMessage;
  /** HL7 v2 only: the header the ACK after mapping answers. */
  header: MshHeader | undefined;
  charset: string;
  mapping: MappingSelection;
  drafts: ResourceDraft[];
  merges: PatientMerge[];
  eventTime: Date | undefined;
  /** The mapping's issues; applyDrafts adds those of resources it refuses. */
  issues: MappingIssue[];
  /** The FHIR document the drafts make (C-CDA), stored as a Bundle after them. */
  document: DocumentPlan | undefined;
}

interface Version {
  stored: StoredResource;
  sourceMessageId: number;
  mapping: MappingSelection;
  /** A version a patient merge made: the one kind allowed to move a resource to another patient. */
  patientMerge?: boolean;
}

/**
 * The audit trail of the batch: one AuditEvent per message that wrote versions, naming them, their patients and the
 * message, with a leaf that binds it to the message and mapping like the versions' own leaves.
 */
function importAudits(versions: Version[], mapped: Array<{ message: InboxMessage }>, terminologyVersion: string, now: Date): auditTrail.AuditRecord[] {
  const byMessage = new Map<number, Version[]>();
  for (const version of versions) {
    const list = byMessage.get(version.sourceMessageId);
    if (list) list.push(version);
    else byMessage.set(version.sourceMessageId, [version]);
  }
  return mapped.flatMap(({ message }) => {
    const written = byMessage.get(message.id);
    if (!written) return [];
    const content = auditTrail.importAuditEvent(
      {
        message: { id: message.id, protocol: message.protocol, sender: message.sender, source: message.source },
        written: written.map(({ stored }) => ({ resourceType: stored.resourceType, id: stored.id, versionId: stored.versionId, created: stored.versionId === 1 })),
        patients: written.flatMap(({ stored }) => auditTrail.patientsOf(stored.content)),
      },
      now,
    );
    return [{ content, recorded: now, sourceMessageId: message.id, rawSha256: bytesToHex(message.rawSha256), mappingSha256: written[0]!.mapping.sha256, terminologyVersion }];
  });
}

/**
 * Applies one message's drafts on top of `latest` (what this batch has made of each resource so far) and appends the
 * new versions to `versions`; all or nothing, so a message refused halfway leaves the batch as it was.
 *
 * Order: a message about an earlier event than the one the resource last took (EVN-2/MSH-7 against its event time)
 * only fills in elements the resource lacks and never overwrites or removes one, so an A08 delayed behind a newer
 * A08 cannot roll a patient back, while an A04 that arrives after its A08 still contributes what the A08 lacked. A
 * version that would change nothing is not written.
 *
 * Every resource must be valid FHIR R4 before it is written; one that is not fails the message with a coded error
 * (a mapping bug or an unusable message), it is never stored.
 */
function applyDrafts(item: Mapped, latest: Map<string, StoredResource>, versions: Version[], now: Date, mergeKeys: ReadonlySet<string> = new Set()): IngestOutcome['resources'] {
  // Several drafts for one resource (a merge's link on the surviving patient) make one version of it.
  const staged = new Map<string, Record<string, unknown>>();
  for (const draft of item.drafts) {
    const key = `${draft.resourceType}/${draft.id}`;
    const previous = latest.get(key);
    const base = staged.get(key) ?? previous?.content;
    const older = item.eventTime !== undefined && previous?.eventTime != null && item.eventTime < previous.eventTime;
    staged.set(key, mergeDraft(base, older ? fillOnly(draft, base!) : draft));
  }
  const made: StoredResource[] = [];
  for (const [key, merged] of staged) {
    const previous = latest.get(key);
    // What the message leaves as it was (the ward, the doctor and the sending facility every message names) is not
    // written, nor validated again: the stored version is what it was when it was written.
    if (previous !== undefined && sameContent(previous.content, merged)) continue;
    const check = checkMappedResource(merged);
    if (check.kind === 'invalid') {
      // The patient is what every other resource of the message hangs on: without a valid one nothing is stored.
      if (merged.resourceType === 'Patient') throw invalidFhir(merged, check.problems);
      item.issues.push(check.issue);
      continue;
    }
    if (check.kind === 'repaired') item.issues.push(check.issue);
    const content = check.resource;
    // A repair (an element left out, NUL removed) can bring it back to the stored version.
    if (previous !== undefined && sameContent(previous.content, content)) continue;
    // keepPatientsApart has given drafts that name another patient ids of their own; what still would move a record
    // (a draft that names no patient merged onto one that does is not a move) fails the message, never the record.
    if (!mergeKeys.has(key) && compartment.changesPatient(previous?.content, content)) {
      throw new AnchorlineError('ANCHORLINE_ERR_STORE_PATIENT_CHANGED', `${key} belongs to another patient than this message's`);
    }
    made.push(resources.stampVersion(previous, content, now, item.eventTime));
  }
  for (const next of made) {
    const key = `${next.resourceType}/${next.id}`;
    latest.set(key, next);
    versions.push({ stored: next, sourceMessageId: item.message.id, mapping: item.mapping, ...(mergeKeys.has(key) ? { patientMerge: true } : {}) });
  }
  return made.map((next) => ({ resourceType: next.resourceType, id: next.id, versionId: next.versionId }));
}

/**
 * Ids that senders reuse for another patient's record (C-CDA entry ids copied from a vendor template, a filler order
 * number or visit number issued twice) must not turn one patient's resource into another's. A draft whose resource
 * exists under another patient (stored, or written earlier in this batch) is renamed to an id of its own, made from
 * its id and its patient, and every reference to it in the message follows; the message gets a warning. The renamed
 * resources are locked like the rest before they change. The same message again finds the same renamed resource.
 * Returns the renames, `Type/id` sent to `Type/id` kept apart.
 */
async function keepPatientsApart(
  client: pg.PoolClient,
  item: Mapped,
  stored: Map<string, StoredResource>,
  latest: Map<string, StoredResource>,
): Promise<ReadonlyMap<string, string>> {
  const renames = new Map<string, { resourceType: string; id: string }>();
  for (const draft of item.drafts) {
    const key = `${draft.resourceType}/${draft.id}`;
    const previous = latest.get(key);
    if (previous === undefined || renames.has(key)) continue;
    const owner = compartment.patientOf(previous.content);
    const sent = compartment.patientOf(draft);
    if (owner === undefined || sent === undefined || owner === sent) continue;
    const id = deterministicId(draft.resourceType, draft.id, sent);
    renames.set(key, { resourceType: draft.resourceType, id });
    item.issues.push({
      severity: 'warning',
      code: 'ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS',
      location: draft.resourceType,
      detail: `${key} belongs to another patient; this message's ${draft.resourceType} was kept apart as ${draft.resourceType}/${id}`,
      value: key,
    });
  }
  if (renames.size === 0) return new Map();
  const missing = [...renames.values()].filter((target) => !latest.has(`${target.resourceType}/${target.id}`));
  for (const [key, resource] of await resources.lockCurrent(client, missing)) {
    stored.set(key, resource);
    latest.set(key, resource);
  }
  const references = new Map([...renames].map(([from, to]) => [from, `${to.resourceType}/${to.id}`]));
  item.drafts = item.drafts.map((draft) => {
    const renamed = renames.get(`${draft.resourceType}/${draft.id}`);
    const moved = rewriteReferences(draft, references) as ResourceDraft;
    return renamed === undefined ? moved : { ...moved, id: renamed.id };
  });
  return references;
}

/** The draft reduced to what the stored resource lacks: no replacing, no removing. */
function fillOnly(draft: ResourceDraft, current: Record<string, unknown>): ResourceDraft {
  const reduced: ResourceDraft = { resourceType: draft.resourceType, id: draft.id };
  for (const [name, value] of Object.entries(draft)) {
    if (name === 'resourceType' || name === 'id' || value === null || value === undefined) continue;
    if (current[name] === undefined) reduced[name] = value;
  }
  return reduced;
}

/** Equal apart from meta (which the store stamps). */
function sameContent(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const { meta: _a, ...restA } = a;
  const { meta: _b, ...restB } = b;
  return isDeepStrictEqual(restA, restB);
}

function invalidFhir(content: Record<string, unknown>, problems: string[]): AnchorlineError {
  // The validator names elements and rules, not values; still, keep the detail short.
  return new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_FHIR', `${String(content.resourceType)}: ${problems.slice(0, 3).join('; ')}`.slice(0, 500));
}

/** A mapping issue the source's config makes fatal fails the message (mapping config `fatalIssues`). */
function assertNoFatalIssue(issues: readonly MappingIssue[], fatal: readonly string[] | undefined): void {
  if (fatal === undefined || fatal.length === 0) return;
  const found = issues.find((issue) => fatal.includes(issue.code));
  if (found === undefined) return;
  throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FATAL_ISSUE', `${found.code} at ${found.location}, which this source's mapping config makes fatal`, { location: found.location });
}

/** ERR-3 condition (table 0357) of each issue code in an ACK's warnings. */
const ISSUE_CONDITIONS: Readonly<Record<string, string>> = {
  ANCHORLINE_ISSUE_INVALID_VALUE: '102',
  ANCHORLINE_ISSUE_MISSING_FIELD: '101',
  ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE: '103',
};

/**
 * The drafts of a patient merge (A40): every current resource that references the source patient, re-pointed to the
 * target; the source marked inactive and `replaced-by` the target; the target `replaces` the source. The resources
 * are found through the reference index (and among this batch's own new versions) and locked before they change.
 * A source nobody stored leaves nothing to merge.
 */
async function patientMergeDrafts(
  client: pg.PoolClient,
  merge: PatientMerge,
  stored: Map<string, StoredResource>,
  latest: Map<string, StoredResource>,
): Promise<ResourceDraft[]> {
  const sourceRef = `Patient/${merge.sourceId}`;
  const targetRef = `Patient/${merge.targetId}`;
  if (merge.sourceId === merge.targetId) return [];
  const wanted = new Map<string, { resourceType: string; id: string }>();
  for (const key of await resources.referencing(client, sourceRef)) wanted.set(`${key.resourceType}/${key.id}`, key);
  wanted.set(sourceRef, { resourceType: 'Patient', id: merge.sourceId });
  wanted.set(targetRef, { resourceType: 'Patient', id: merge.targetId });
  const missing = [...wanted.entries()].filter(([key]) => !latest.has(key)).map(([, key]) => key);
  if (missing.length > 0) {
    for (const [key, resource] of await resources.lockCurrent(client, missing)) {
      stored.set(key, resource);
      latest.set(key, resource);
    }
  }
  const source = latest.get(sourceRef);
  if (source === undefined) return [];
  const drafts: ResourceDraft[] = [];
  for (const [key, resource] of latest) {
    if (key === sourceRef || key === targetRef) continue;
    // This batch's own Provenance of an earlier message keeps the patient it wrote, as a stored one does.
    if (!resources.mergeRepoints(resource.resourceType)) continue;
    if (!resources.literalReferences(resource.content).includes(sourceRef)) continue;
    drafts.push(repoint(resource.content, sourceRef, targetRef) as ResourceDraft);
  }
  drafts.push({ resourceType: 'Patient', id: merge.sourceId, active: false, link: withLink(source.content.link, targetRef, 'replaced-by') });
  // The target's own draft (from the message's PID) comes first in the message, so its link is added on top of it.
  const targetLinks = latest.get(targetRef)?.content.link;
  drafts.push({ resourceType: 'Patient', id: merge.targetId, link: withLink(targetLinks, sourceRef, 'replaces') });
  return drafts;
}

/** `content` with every literal reference to `from` pointing at `to` instead (a full-resource draft). */
function repoint(content: Record<string, unknown>, from: string, to: string): Record<string, unknown> {
  const { meta: _meta, ...rest } = content;
  return rewriteReferences(rest, new Map([[from, to]])) as Record<string, unknown>;
}

/** A copy of `value` with each literal reference that `targets` has a key for replaced by its value. */
function rewriteReferences(value: unknown, targets: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((item) => rewriteReferences(item, targets));
  // A decimal kept as a LosslessNumber (`5.40`) is a value, not an element to copy member by member.
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    out[key] = key === 'reference' && typeof child === 'string' && targets.has(child) ? targets.get(child) : rewriteReferences(child, targets);
  }
  return out;
}

function withLink(existing: unknown, other: string, type: 'replaced-by' | 'replaces'): unknown[] {
  const links = Array.isArray(existing) ? existing.filter((l) => !(l && typeof l === 'object' && (l as { other?: { reference?: string } }).other?.reference === other)) : [];
  return [...links, { other: { reference: other }, type }];
}

function wantsAck(options: IngestOptions, header: MshHeader | undefined): boolean {
  return options.ackAfterMapping && !isEnhancedMode(header);
}

/** The ACK after mapping; `mapping` is the selection already made for the message, when there is one. */
function ackFor(
  options: IngestOptions,
  header: MshHeader | undefined,
  charset: string,
  error?: AnchorlineError,
  mapping?: MappingSelection,
  issues: readonly MappingIssue[] = [],
): { ack: Buffer; ackCode: AckCode } {
  const ackCode: AckCode = error ? ackCodeFor(error.code, false) : 'AA';
  const timeZone = (mapping ?? options.mappings.select(header)).options.timeZone;
  // Warnings (not information) go back to the sender as ERR segments of severity W on the AA.
  const warnings = issues
    .filter((issue) => issue.severity !== 'information')
    .map((issue) => ({ code: issue.code, condition: ISSUE_CONDITIONS[issue.code] ?? '0', location: issue.location, detail: issue.detail }));
  return { ack: encodeAck({ header, charset, ackCode, error, warnings, timeZone, engineApplication: options.engineApplication }), ackCode };
}

interface Waiting {
  messageId: number;
  /** A retry: it runs in a batch of its own. */
  alone: boolean;
  resolve: (outcome: IngestOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers the jobs running at the same time into batches: while batches are in their transactions the next gathers,
 * so batches grow with load and a lone job waits for no timer. Up to `batchesInFlight` batches run at once in a
 * process (default one), each in its own transaction, so that the process can map one batch while PostgreSQL writes
 * another. Concurrent batches are what concurrent worker processes already are to each other: they lock the
 * resources they change in key order, and a message about an earlier event than its resource's last fills in and
 * never overwrites. A batch holding a retry runs with nothing else in flight (see createIngestHandler).
 */
export class IngestBatcher {
  private readonly maxBatchMessages: number;
  private readonly inFlightLimit: number;
  private readonly map: (messageIds: number[], runAlone: ReadonlySet<number>) => Promise<IngestOutcome[]>;
  private readonly pacer: MappingPacer | undefined;
  private pending: Waiting[] = [];
  private running = 0;
  /** A batch holding a retry is running: nothing starts beside it. */
  private exclusive = false;
  private gathering = false;

  /** `map` maps one batch (ingestMessages, bound to the worker's options). */
  constructor(options: Pick<IngestOptions, 'maxBatchMessages' | 'batchesInFlight' | 'pacer'>, map: (messageIds: number[], runAlone: ReadonlySet<number>) => Promise<IngestOutcome[]>) {
    this.maxBatchMessages = options.maxBatchMessages ?? 100;
    this.inFlightLimit = Math.max(1, options.batchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT);
    this.map = map;
    this.pacer = options.pacer;
  }

  submit(messageId: number, alone: boolean): Promise<IngestOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ messageId, alone, resolve, reject });
      this.gather();
    });
  }

  /** Jobs claimed together start within one turn of the event loop: let them all arrive before a batch starts. */
  private gather(): void {
    if (this.gathering || this.exclusive || this.running >= this.inFlightLimit) return;
    this.gathering = true;
    setImmediate(() => {
      this.gathering = false;
      this.startBatches();
    });
  }

  private startBatches(): void {
    while (this.pending.length > 0 && !this.exclusive && this.running < this.inFlightLimit) {
      const size = Math.min(this.pending.length, this.maxBatchMessages);
      const alone = this.pending.slice(0, size).some((w) => w.alone);
      // A retry waits for the batches in flight to end; the last one to end starts it.
      if (alone && this.running > 0) return;
      const batch = this.pending.splice(0, size);
      this.running++;
      this.exclusive = alone;
      void this.run(batch).finally(() => {
        this.running--;
        if (alone) this.exclusive = false;
        if (this.pending.length > 0) this.gather();
      });
    }
  }

  private async run(batch: Waiting[]): Promise<void> {
    const started = performance.now();
    try {
      const outcomes = await this.map(batch.map((w) => w.messageId), new Set(batch.filter((w) => w.alone).map((w) => w.messageId)));
      batch.forEach((w, i) => w.resolve(outcomes[i]!));
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
    // The batch's jobs are answered; the next batch waits while intake is pressed (workers/pacing.ts).
    await this.pacer?.rest(performance.now() - started);
  }
}

/** Batches one process runs at once (config workers.batchesInFlight). */
export const DEFAULT_BATCHES_IN_FLIGHT = 1;

export function createIngestHandler(options: IngestOptions): JobHandler {
  const batcher = new IngestBatcher(options, (messageIds, runAlone) => ingestMessages(options, messageIds, runAlone));
  return async (data: JobData, ctx: JobContext) => {
    const messageId = Number(data.id);
    if (!Number.isSafeInteger(messageId)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'ingest job without a message id');
    try {
      // A retry runs alone, so that whatever failed its first batch cannot fail it again through a neighbour. It
      // still goes through the batcher, which starts it only when no other batch is in flight and starts none beside
      // it: a message that crashed its worker before runs alone in this process, and can take no neighbour down.
      await batcher.submit(messageId, ctx.attempt > 1);
    } catch (error) {
      const code = isAnchorlineError(error) ? error.code : 'ANCHORLINE_ERR_INTERNAL';
      options.log.warn({ messageId, attempt: ctx.attempt, code, ...errorFields(error) }, 'ingest: attempt failed');
      if (ctx.attempt >= options.maxAttempts) {
        // Out of attempts: record the failure on the message itself, where staff look, and end the job. If even that
        // write fails, the job fails and the sweeper brings the message back later.
        await inbox.markFailed(options.pool, messageId, code, 'processing failed after repeated attempts');
        options.metrics?.mappingFailed(code);
        return;
      }
      await inbox.noteAttempt(options.pool, messageId, code).catch(() => undefined);
      throw error;
    }
  };
}
