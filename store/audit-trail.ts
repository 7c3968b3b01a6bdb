/**
 * The audit trail: one FHIR AuditEvent for every read and every write of patient data. A write's is written in the
 * transaction that writes; a read's in that transaction (recordRead) or in a group commit the read waits for before it
 * answers (ReadAuditBatcher, the FHIR reads), so that a read whose AuditEvent cannot be stored is not answered and a
 * write is never without its record. AuditEvents are stored like every other resource (history, search index) and get a provenance
 * leaf each, so the trail is anchored with the records it describes and an auditor can prove an AuditEvent unaltered
 * like any record.
 *
 * Shape: IHE Basic Audit Log Patterns (BALP). Reads follow BALP Read/Query: type `rest`, subtype the FHIR
 * interaction, the client as Source Role ID agent (requestor) and the engine as Destination Role ID, the engine as
 * observer, the patients concerned as `patient` entities (role 1), each returned version as a `domain resource`
 * entity (role 4), and for a search the query (role 24, base64 of the query string). Writes by mapping an inbound
 * message follow BALP Create/Update for the entities and agents, typed DICOM 110107 Import because the data arrived
 * as a message, not a REST call: the sending system is the requestor, and the inbound message is an entity (role 20,
 * job) named by its inbox id.
 *
 * Audit events hold references and ids, never names or other patient details, and are never changed after they are
 * written: they stay out of the reference index that patient merges re-point (see resources.writeVersions).
 *
 * Leaves: an AuditEvent of an import names its inbound message and mapping config in its leaf, like the resources
 * that message produced. An AuditEvent of a read has neither; its leaf says so with NO_SOURCE_SHA256 (the SHA-256 of
 * no bytes) in rawSha256 and mappingSha256, and the ledger audit accepts that only for AuditEvents.
 */
import { AsyncResource } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { newSalt, provenanceLeafHash, resourceSha256, type LeafPreimage } from '../anchor/index.ts';
import { withTransaction } from './db.ts';
import { appendLeaves, type NewLeaf } from './ledger.ts';
import { stampVersion, writeVersions, type StoredResource } from './resources.ts';
import { ENGINE_AGENT_NAME, searchEntries } from './search-index.ts';

/** SHA-256 of the empty byte string: what an AuditEvent's leaf names as raw message and mapping when there is none. */
export const NO_SOURCE_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export const AUDIT_EVENT = 'AuditEvent';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';

/** Who acted: an API credential, a signed-in person, or the system that sent a message. */
export interface AuditActor {
  /**
   * 'api-key' and 'oauth-client' for API callers; 'user' for a signed-in person; 'sender' for a sending system
   * (MSH-3|MSH-4, AE title, ...).
   */
  kind: 'api-key' | 'oauth-client' | 'user' | 'sender';
  id: string;
  name: string;
  /** The person's own resource (`Practitioner/x`, `Patient/x`, `RelatedPerson/x`), for kind 'user'. */
  fhirUser?: string | undefined;
  /** The app (client_id) a person acted through, for kind 'user'. */
  app?: string | undefined;
  /** The configured source the credential or connection is bound to. */
  source?: string | undefined;
  /** Network address of the caller. */
  address?: string | undefined;
}

export interface AuditedVersion {
  resourceType: string;
  id: string;
  versionId: number;
}

/** The REST interactions a read audit can record (FHIR restful-interaction codes; `operation` for $document). */
export type ReadInteraction = 'read' | 'vread' | 'history-instance' | 'search-type' | 'operation';

export interface ReadAudit {
  interaction: ReadInteraction;
  actor: AuditActor;
  /** What the caller received. */
  returned: AuditedVersion[];
  /** Patients the returned data is about ("Patient/id"). */
  patients: string[];
  /** The query string of a search, recorded as given. */
  query?: string;
  /** What was read, in words, when it is not a FHIR interaction (a raw message, a DICOM instance). */
  description?: string;
  /** The purpose of use the read was made under (v3 PurposeOfUse code: TREAT, ETREAT, PATRQT, ...), for a person. */
  purposeOfUse?: string;
  /**
   * What authorised each disclosure under consent enforcement: the consents (`Consent/x/_history/v`) that permitted
   * it, and whether the policy default or the person's own record did. Absent for system callers.
   */
  authorization?: ReadAuthorization;
}

/** The consent decisions behind a person's read (api/consent-gate.ts). */
export interface ReadAuthorization {
  /** Consent versions that permitted something returned. */
  consents: string[];
  /** Something returned was permitted by the policy default (no consent applied). */
  byDefault: boolean;
  /** Something returned was the person's own record or a represented patient's. */
  ownRecord: boolean;
  /** Break-the-glass: the reason the person gave for overriding consent. Flagged for review. */
  breakGlass?: { reason: string };
}

export interface ImportAudit {
  message: { id: number; protocol: string; sender: string; source: string };
  written: Array<AuditedVersion & { created: boolean }>;
  patients: string[];
}

/**
 * A coding without its display: one AuditEvent is written per message and per read, and displays would double its
 * size (past PostgreSQL's TOAST threshold) while saying nothing the code system does not. The display argument
 * documents the code here.
 */
function coding(system: string, code: string, _display: string): Record<string, string> {
  return { system, code };
}

const PURPOSE_OF_USE = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

function agentFor(actor: AuditActor, purposeOfUse?: readonly string[]): Record<string, unknown> {
  return {
    type: { coding: [coding(DCM, '110153', 'Source Role ID')] },
    who: {
      ...(actor.fhirUser ? { reference: actor.fhirUser } : {}),
      identifier: { system: `urn:anchorline:${actor.kind}`, value: actor.id },
      display: actor.source ? `${actor.name} (source ${actor.source})` : actor.name,
    },
    altId: `${actor.kind}/${actor.id}`,
    requestor: true,
    ...(actor.address ? { network: { address: actor.address, type: '2' } } : {}),
    ...(purposeOfUse && purposeOfUse.length > 0 ? { purposeOfUse: purposeOfUse.map((code) => ({ coding: [coding(PURPOSE_OF_USE, code, code)] })) } : {}),
  };
}

/** The app a person used, as BALP records a user's application: a second agent of type 110150 Application. */
function appAgent(actor: AuditActor): Array<Record<string, unknown>> {
  return actor.app ? [{ type: { coding: [coding(DCM, '110150', 'Application')] }, who: { identifier: { system: 'urn:anchorline:oauth-client', value: actor.app } }, requestor: false }] : [];
}

/**
 * The consents that authorised a read, as entities of role 13 (Security Resource, the policy that allowed the
 * disclosure), and break-the-glass as the purposes BTG and ETREAT with the reason given.
 */
function authorizationEntities(authorization: ReadAuthorization | undefined): Array<Record<string, unknown>> {
  if (!authorization) return [];
  return [
    ...authorization.consents.map((reference) => ({ what: { reference }, type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '13', 'Security Resource') })),
    ...(authorization.byDefault ? [{ what: { identifier: { system: 'urn:anchorline:consent-policy', value: 'default' } }, type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '13', 'Security Resource') }] : []),
  ];
}

/** Purposes of use a read records: the one it was made under, and BTG when consent was overridden. */
function purposesOf(audit: ReadAudit): string[] {
  const purposes = audit.purposeOfUse ? [audit.purposeOfUse] : [];
  if (audit.authorization?.breakGlass && !purposes.includes('BTG')) purposes.push('BTG');
  return purposes;
}

const ENGINE_AGENT = { type: { coding: [coding(DCM, '110152', 'Destination Role ID')] }, who: { display: ENGINE_AGENT_NAME }, requestor: false };
const ENGINE_SOURCE = { site: ENGINE_AGENT_NAME, observer: { display: ENGINE_AGENT_NAME }, type: [coding(SOURCE_TYPE, '4', 'Application Server')] };

function patientEntities(patients: string[]): Array<Record<string, unknown>> {
  return [...new Set(patients)].map((reference) => ({ what: { reference }, type: coding(ENTITY_TYPE, '1', 'Person'), role: coding(OBJECT_ROLE, '1', 'Patient') }));
}

function dataEntities(versions: AuditedVersion[]): Array<Record<string, unknown>> {
  return versions.map((v) => ({ what: { reference: `${v.resourceType}/${v.id}/_history/${v.versionId}` }, type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '4', 'Domain Resource') }));
}

/** A BALP Read or Query AuditEvent (no id or meta yet). */
export function readAuditEvent(audit: ReadAudit, recorded: Date): Record<string, unknown> {
  const entity = [
    ...patientEntities(audit.patients),
    ...dataEntities(audit.returned),
    ...(audit.query !== undefined ? [{ type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '24', 'Query'), query: Buffer.from(audit.query, 'utf8').toString('base64') }] : []),
    ...authorizationEntities(audit.authorization),
  ];
  const purposes = purposesOf(audit);
  const breakGlass = audit.authorization?.breakGlass;
  return {
    resourceType: AUDIT_EVENT,
    // Break-the-glass reads carry a security label that review queues search for (AuditEvent?_security=...BTG).
    ...(breakGlass ? { meta: { security: [coding(PURPOSE_OF_USE, 'BTG', 'break the glass')] } } : {}),
    type: coding('http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest', 'Restful Operation'),
    subtype: [coding(RESTFUL_INTERACTION, audit.interaction, audit.interaction)],
    action: audit.interaction === 'search-type' ? 'E' : 'R',
    recorded: recorded.toISOString(),
    outcome: '0',
    ...(breakGlass ? { outcomeDesc: `break-the-glass: ${breakGlass.reason}${audit.description ? `; ${audit.description}` : ''}` } : audit.description ? { outcomeDesc: audit.description } : {}),
    ...(purposes.length > 0 ? { purposeOfEvent: purposes.map((code) => ({ coding: [coding(PURPOSE_OF_USE, code, code)] })) } : {}),
    agent: [agentFor(audit.actor, purposes), ...appAgent(audit.actor), ENGINE_AGENT],
    source: ENGINE_SOURCE,
    ...(entity.length > 0 ? { entity } : {}),
  };
}

/** A disclosure sealed for one recipient's public key (api/sealed-export.ts): a read, and the key it was sealed for. */
export interface SealedExportAudit extends Omit<ReadAudit, 'interaction' | 'query'> {
  recipient: {
    /** RFC 7638 SHA-256 thumbprint of the recipient's public key (base64url): who can open it, without the key. */
    thumbprint: string;
    /** JWE key management and content encryption algorithms (ECDH-ES+A256KW or RSA-OAEP-256; A256GCM). */
    alg: string;
    enc: string;
  };
}

const JWK_THUMBPRINT_URN = 'urn:ietf:params:oauth:jwk-thumbprint:sha-256:';
const SHARE_ACTIVITY = 'urn:anchorline:share';

/**
 * The AuditEvent of a sealed export: a BALP read of what was disclosed (the patient, every version, the consents that
 * authorised it), typed DICOM 110106 Export because the records leave the engine, with the recipient's key as the
 * destination agent (its thumbprint as an RFC 9278 URN, and as altId so `AuditEvent?altid=jwk-thumbprint/<t>` finds
 * every share to one key) and subtypes `operation` and urn:anchorline:share `export-sealed`.
 */
export function sealedExportAuditEvent(audit: SealedExportAudit, recorded: Date): Record<string, unknown> {
  const read = readAuditEvent({ ...audit, interaction: 'operation' }, recorded);
  const { thumbprint, alg, enc } = audit.recipient;
  const recipient = {
    type: { coding: [coding(DCM, '110152', 'Destination Role ID')] },
    who: { identifier: { system: 'urn:ietf:rfc:3986', value: `${JWK_THUMBPRINT_URN}${thumbprint}` }, display: `JWE recipient (${alg}, ${enc})` },
    altId: `jwk-thumbprint/${thumbprint}`,
    requestor: false,
  };
  return {
    ...read,
    type: coding(DCM, '110106', 'Export'),
    subtype: [coding(RESTFUL_INTERACTION, 'operation', 'operation'), coding(SHARE_ACTIVITY, 'export-sealed', 'export sealed for a recipient key')],
    agent: [...(read.agent as unknown[]), recipient],
  };
}

/** A BALP Create/Update AuditEvent for the versions one inbound message wrote (no id or meta yet). */
export function importAuditEvent(audit: ImportAudit, recorded: Date): Record<string, unknown> {
  const allCreated = audit.written.every((v) => v.created);
  const interactions = [...new Set(audit.written.map((v) => (v.created ? 'create' : 'update')))];
  return {
    resourceType: AUDIT_EVENT,
    type: coding(DCM, '110107', 'Import'),
    subtype: interactions.map((i) => coding(RESTFUL_INTERACTION, i, i)),
    action: allCreated ? 'C' : 'U',
    recorded: recorded.toISOString(),
    outcome: '0',
    agent: [
      agentFor({ kind: 'sender', id: audit.message.sender || '(unknown)', name: audit.message.source }),
      ENGINE_AGENT,
    ],
    source: ENGINE_SOURCE,
    entity: [
      ...patientEntities(audit.patients),
      ...dataEntities(audit.written),
      {
        what: { identifier: { system: 'urn:anchorline:inbox-message', value: String(audit.message.id) } },
        type: coding(ENTITY_TYPE, '2', 'System Object'),
        role: coding(OBJECT_ROLE, '20', 'Job'),
        detail: [{ type: 'protocol', valueString: audit.message.protocol }],
      },
    ],
  };
}

/** A resource written through the FHIR REST API (a Consent), by a person or a system credential. */
export interface RestWriteAudit {
  interaction: 'create' | 'update';
  actor: AuditActor;
  written: AuditedVersion;
  patients: string[];
  /** The inbox row holding the request body (protocol fhir-rest), which the version's leaf names. */
  messageId: number;
}

/**
 * A BALP Create or Update AuditEvent (type rest, subtype the interaction) for one version written through the FHIR
 * API: the writer as requestor, the engine as destination, the patient, the version written and the stored request
 * body (role 20, job), as an import names its message.
 */
export function restWriteAuditEvent(audit: RestWriteAudit, recorded: Date): Record<string, unknown> {
  return {
    resourceType: AUDIT_EVENT,
    type: coding('http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest', 'Restful Operation'),
    subtype: [coding(RESTFUL_INTERACTION, audit.interaction, audit.interaction)],
    action: audit.interaction === 'create' ? 'C' : 'U',
    recorded: recorded.toISOString(),
    outcome: '0',
    agent: [agentFor(audit.actor), ...appAgent(audit.actor), ENGINE_AGENT],
    source: ENGINE_SOURCE,
    entity: [
      ...patientEntities(audit.patients),
      ...dataEntities([audit.written]),
      {
        what: { identifier: { system: 'urn:anchorline:inbox-message', value: String(audit.messageId) } },
        type: coding(ENTITY_TYPE, '2', 'System Object'),
        role: coding(OBJECT_ROLE, '20', 'Job'),
        detail: [{ type: 'protocol', valueString: 'fhir-rest' }],
      },
    ],
  };
}

/** What is done with a research project (api/research.ts): each use is one AuditEvent, purpose HRESCH. */
export type ResearchActivity = 'define' | 'release' | 'refresh' | 'query' | 'export';

export interface ResearchAudit {
  activity: ResearchActivity;
  actor: AuditActor;
  /** The project: `ResearchStudy/<id>`, an entity of every event of the project, so one search finds its usage. */
  study: string;
  /**
   * The clinical patients whose data the event released into the research database (`Patient/x`, role 1), so that
   * each patient's own view of the trail shows the research use of their data. Empty for queries and exports, which
   * read only the de-identified copy.
   */
  patients: string[];
  /** Versions written (a definition: the ResearchStudy or Group version). */
  written?: AuditedVersion[];
  /** The inbox row holding a definition's request body (role 20, job), as a REST write names it. */
  messageId?: number;
  /** The query string of a researcher's search or export, recorded as given. */
  query?: string;
  /** What was done, in words: counts, the de-identification config digest, the refusal's reason. Never patient data. */
  description?: string;
  /** '0' done; '4' refused (a release below k). Default '0'. */
  outcome?: '0' | '4';
}

const RESEARCH_ACTIVITY = 'urn:anchorline:research-activity';

/**
 * A research use (BALP-shaped): definitions as REST create/update, releases and refreshes as DICOM 110106 Export of
 * the cohort's data into the research database, searches as REST search, Bulk Data exports as Export with subtype
 * operation. Every one carries purposeOfEvent HRESCH, the project as an entity (`ResearchStudy/<id>`, role 3 Report,
 * the study being its subject), and a second subtype in urn:anchorline:research-activity naming the activity.
 */
export function researchAuditEvent(audit: ResearchAudit, recorded: Date): Record<string, unknown> {
  const rest = audit.activity === 'define' || audit.activity === 'query';
  const created = audit.written !== undefined && audit.written.every((v) => v.versionId === 1);
  const interaction = audit.activity === 'define' ? (created ? 'create' : 'update') : audit.activity === 'query' ? 'search-type' : 'operation';
  const entity = [
    ...patientEntities(audit.patients),
    { what: { reference: audit.study }, type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '3', 'Report') },
    ...dataEntities(audit.written ?? []),
    ...(audit.query !== undefined ? [{ type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '24', 'Query'), query: Buffer.from(audit.query, 'utf8').toString('base64') }] : []),
    ...(audit.messageId !== undefined
      ? [{
          what: { identifier: { system: 'urn:anchorline:inbox-message', value: String(audit.messageId) } },
          type: coding(ENTITY_TYPE, '2', 'System Object'),
          role: coding(OBJECT_ROLE, '20', 'Job'),
          detail: [{ type: 'protocol', valueString: 'fhir-rest' }],
        }]
      : []),
  ];
  return {
    resourceType: AUDIT_EVENT,
    type: rest ? coding('http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest', 'Restful Operation') : coding(DCM, '110106', 'Export'),
    subtype: [coding(RESTFUL_INTERACTION, interaction, interaction), coding(RESEARCH_ACTIVITY, audit.activity, audit.activity)],
    action: audit.activity === 'define' ? (created ? 'C' : 'U') : audit.activity === 'query' ? 'E' : 'R',
    recorded: recorded.toISOString(),
    outcome: audit.outcome ?? '0',
    ...(audit.description ? { outcomeDesc: audit.description } : {}),
    purposeOfEvent: [{ coding: [coding(PURPOSE_OF_USE, 'HRESCH', 'healthcare research')] }],
    agent: [agentFor(audit.actor, ['HRESCH']), ENGINE_AGENT],
    source: ENGINE_SOURCE,
    entity,
  };
}

/** An AuditEvent to store, with what its leaf names as its source. */
export interface AuditRecord {
  content: Record<string, unknown>;
  recorded: Date;
  /** The inbound message an import event is about; null for reads. */
  sourceMessageId: number | null;
  /** Lowercase hex; NO_SOURCE_SHA256 for reads. */
  rawSha256: string;
  mappingSha256: string;
  terminologyVersion?: string;
}

/** Random bytes for AuditEvent ids, drawn from the CSPRNG a block at a time rather than 10 bytes per call. */
const idRandom = Buffer.alloc(10 * 256);
let idRandomAt = idRandom.length;

/**
 * A UUIDv7 (RFC 9562 5.7): 48 bits of Unix time in milliseconds, then 74 random bits. AuditEvents are the most
 * numerous rows of the store (one per read, one per mapped message); ids that grow with time land at the right edge
 * of every B-tree they key (the current and history tables, each search index parameter's rows, the leaves) instead
 * of on a random page of each, as random (v4) ids did. The time it reveals is the event's `recorded`, which the
 * event states anyway.
 */
export function auditEventId(now: number = Date.now()): string {
  if (idRandomAt === idRandom.length) {
    randomFillSync(idRandom);
    idRandomAt = 0;
  }
  const random = idRandom.subarray(idRandomAt, (idRandomAt += 10));
  const time = now.toString(16).padStart(12, '0').slice(-12);
  const hex = random.toString('hex');
  // version 7 in the 13th digit; variant 10 in the top bits of the 17th.
  const variant = ((random[2]! & 0x3f) | 0x80).toString(16).padStart(2, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${hex.slice(1, 4)}-${variant}${hex.slice(6, 8)}-${hex.slice(8, 20)}`;
}

/**
 * AuditEvents as version 1 of new resources, with their leaves: for a caller that writes them in the same statements
 * as other versions (the ingest worker, which writes one per message beside the records).
 */
export function auditVersions(records: AuditRecord[]): { versions: Array<{ stored: StoredResource; sourceMessageId: number | null; mappingSha256: string | null }>; leaves: NewLeaf[] } {
  const versions = records.map((record) => ({
    stored: stampVersion(undefined, { ...record.content, id: auditEventId(record.recorded.getTime()) }, record.recorded),
    sourceMessageId: record.sourceMessageId,
    mappingSha256: record.mappingSha256 === NO_SOURCE_SHA256 ? null : record.mappingSha256,
  }));
  const leaves = versions.map(({ stored }, i) => {
    const record = records[i]!;
    const preimage: LeafPreimage = {
      v: 1,
      resourceType: AUDIT_EVENT,
      id: stored.id,
      versionId: String(stored.versionId),
      resourceSha256: resourceSha256(stored.content),
      rawSha256: record.rawSha256,
      mappingSha256: record.mappingSha256,
      terminologyVersion: record.terminologyVersion ?? 'none',
      salt: newSalt(),
    };
    return { resourceType: AUDIT_EVENT, resourceId: stored.id, versionId: stored.versionId, preimage: { ...preimage }, leafHash: provenanceLeafHash(preimage) };
  });
  return { versions, leaves };
}

/** Stores AuditEvents with their leaves in the caller's transaction. Returns their ids. */
export async function recordAuditEvents(client: pg.PoolClient, records: AuditRecord[]): Promise<string[]> {
  if (records.length === 0) return [];
  const { versions, leaves } = auditVersions(records);
  await writeVersions(client, versions, new Map());
  await appendLeaves(client, leaves);
  return versions.map((v) => v.stored.id);
}

/** What a read's AuditEvent is stored as: BALP content, no source message, no mapping. */
function readRecord(audit: ReadAudit, recorded: Date): AuditRecord {
  return { content: readAuditEvent(audit, recorded), recorded, sourceMessageId: null, rawSha256: NO_SOURCE_SHA256, mappingSha256: NO_SOURCE_SHA256 };
}

/** Records one read in the caller's transaction. */
export async function recordRead(client: pg.PoolClient, audit: ReadAudit, recorded: Date = new Date()): Promise<string> {
  const [id] = await recordAuditEvents(client, [readRecord(audit, recorded)]);
  return id!;
}

export interface ReadAuditBatcherOptions {
  /**
   * The pool the group commits run on. Not the API's: a reader's own query holds an API connection only while it
   * reads, and the audit writes must neither wait behind readers nor take intake's connections (the engine passes
   * the background pool).
   */
  pool: pg.Pool;
  /**
   * Write the events. Default true. false resolves every record at once with no event written (config
   * http.auditReads, for measuring only).
   */
  enabled?: boolean;
  /** Read events committed together at most; more wait for the next group. Default 500. */
  maxEventsPerCommit?: number;
  /**
   * Group commits under way at once (each holds one connection of `pool`). Default 1: one commit at a time makes
   * the groups larger, and measured as fast as two here (bench/fhir-read.ts), with one background connection.
   */
  commitConcurrency?: number;
}

interface PendingRead {
  record: AuditRecord;
  resolve: (id: string) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit of read AuditEvents. A read hands its event here once its own query is done and waits: the events
 * of all the reads that finished while the previous group was committing are written in one transaction (the same
 * multi-row statements as recordAuditEvents, so each event stays its own resource, version 1, with its own leaf), and
 * each read's promise resolves after that COMMIT, with synchronous commit: when the caller answers, its event is
 * durable. A group that fails fails every read in it with ANCHORLINE_ERR_AUDIT_UNAVAILABLE: the records of a read
 * whose event is not stored are not sent. A group is not split to find a refused event, as the intake does with
 * messages: read events are made by the engine from ids, so a refused one is a defect or a fault of the store that
 * the next group would meet as well.
 *
 * One read alone costs what it did in its own transaction; many at once share the round trips and the WAL flush.
 */
export class ReadAuditBatcher {
  private readonly pool: pg.Pool;
  private readonly maxEvents: number;
  private readonly concurrency: number;
  private readonly enabled: boolean;
  private pending: PendingRead[] = [];
  private readonly commits = new Set<Promise<void>>();
  private closed = false;
  /**
   * The async context the batcher was made in. A group commit is started by whichever read happens to kick it; run
   * in that read's context, it would belong to that request (QueryCancellation would cancel the whole group when
   * that one client disconnects).
   */
  private readonly context = new AsyncResource('anchorline.ReadAuditBatcher');

  constructor(options: ReadAuditBatcherOptions) {
    this.pool = options.pool;
    this.maxEvents = options.maxEventsPerCommit ?? 500;
    this.concurrency = options.commitConcurrency ?? 1;
    this.enabled = options.enabled ?? true;
  }

  /** Stores the AuditEvent of one read; resolves with its id once it is committed. */
  record(audit: ReadAudit, recorded: Date = new Date()): Promise<string> {
    if (this.closed) return Promise.reject(new AnchorlineError('ANCHORLINE_ERR_SHUTTING_DOWN', 'the audit trail is closed; the read is not answered'));
    if (!this.enabled) return Promise.resolve('');
    const record = readRecord(audit, recorded);
    return new Promise<string>((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      this.kick();
    });
  }

  /** Takes no more reads and waits for the groups being committed and those waiting. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.commits.size > 0) await Promise.all([...this.commits]);
  }

  private kick(): void {
    while (this.pending.length > 0 && this.commits.size < this.concurrency) {
      const group = this.pending.splice(0, this.maxEvents);
      const commit: Promise<void> = this.context.runInAsyncScope(() => this.commit(group)).finally(() => {
        this.commits.delete(commit);
        this.kick();
      });
      this.commits.add(commit);
    }
  }

  private async commit(group: PendingRead[]): Promise<void> {
    let ids: string[];
    try {
      ids = await withTransaction(this.pool, (client) => recordAuditEvents(client, group.map((p) => p.record)));
    } catch (error) {
      const failure = new AnchorlineError('ANCHORLINE_ERR_AUDIT_UNAVAILABLE', undefined, { cause: error });
      for (const p of group) p.reject(failure);
      return;
    }
    group.forEach((p, i) => p.resolve(ids[i]!));
  }
}

/**
 * The patients a resource is about: itself for a Patient, else what the search index records as its `patient`
 * (subject, patient, beneficiary or participant, by type), so the audit trail and `patient=` searches agree. None for
 * an AuditEvent: reading the trail is not reading the patients it names. For a Bundle (a stored document), the
 * patients of its entries: reading it discloses them.
 */
export function patientsOf(resource: Record<string, unknown>): string[] {
  if (resource.resourceType === 'Patient' && typeof resource.id === 'string') return [`Patient/${resource.id}`];
  if (resource.resourceType === AUDIT_EVENT) return [];
  if (resource.resourceType === 'Bundle') {
    const entries = Array.isArray(resource.entry) ? (resource.entry as Array<{ resource?: unknown } | null>) : [];
    return [...new Set(entries.flatMap((entry) => (entry?.resource && typeof entry.resource === 'object' ? patientsOf(entry.resource as Record<string, unknown>) : [])))];
  }
  return searchEntries(resource).tokens.filter((t) => t.param === 'patient').map((t) => t.code);
}
