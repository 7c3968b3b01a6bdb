/** The JSON the console reads from the engine's admin API, as the console uses it. */

export type InboxState = 'queued' | 'done' | 'failed' | 'rejected';

export interface MessageEnvelope {
  id: number;
  protocol: string;
  source: string;
  sender: string;
  controlId: string | null;
  messageType: string | null;
  disposition: 'accepted' | 'rejected' | 'conflict';
  state: InboxState;
  attempts: number;
  errorCode: string | null;
  errorDetail: string | null;
  ackCode: string | null;
  rawSize: number;
  receivedAt: string;
  processedAt: string | null;
  /** How many of the last mapping's issues are warnings or errors (information issues are not counted). */
  mappingWarnings: number;
}

export interface MessagePage {
  total: number;
  limit: number;
  offset: number;
  messages: MessageEnvelope[];
}

export interface WrittenVersion {
  resourceType: string;
  id: string;
  versionId: number;
  current: boolean;
}

export interface MessageDetail extends MessageEnvelope {
  charset: string | null;
  rawSha256: string;
  rawBase64: string;
  text: string | null;
  ackText: string | null;
  blobSha256: string | null;
  resources: WrittenVersion[];
  /** What the last mapping could not map as sent, field by field; empty when everything mapped. */
  mappingIssues: MappingIssue[];
}

/** One thing a mapping could not map as sent (the engine's mappers/issues.ts). */
export interface MappingIssue {
  severity: 'error' | 'warning' | 'information';
  /** ANCHORLINE_ISSUE_*. */
  code: string;
  /** In the message's own terms: `PID-8`, `OBX[3]-2` (the third OBX), `PV1`; for other content, whatever names the place. */
  location: string;
  detail: string;
  /** The value as sent. */
  value?: string;
}

export interface ReprocessOutcome {
  requeued: number[];
  skipped: Array<{ id: number; reason: string }>;
  enqueued: boolean;
}

/** GET /admin/stats. */
export interface EngineStats {
  at: string;
  messages: {
    perSecond: number;
    receivedLastMinute: number;
    byState: Record<InboxState, number>;
    /** Of those done, the messages mapped with warnings; absent from an engine that does not count them. */
    mappedWithWarnings?: number;
  };
  throughput: Array<{ minute: string; received: number; done: number; failed: number }>;
  queue: { driver: 'bullmq' | 'postgres'; waiting: number; active: number; delayed: number; failed: number; backlog: number };
  errors: Array<{ code: string; count: number; lastAt: string }>;
  anchor: {
    unbatchedLeaves: number;
    oldestUnbatchedAgeSeconds: number | null;
    lastBatchNumber: number | null;
    lastBatchClosedAt: string | null;
    chain: null | { lastAnchoredBatch: number | null; lastAnchoredAt: string | null; unanchoredBatches: number };
  };
}

export interface MappingError {
  code: string;
  location?: string;
  detail?: string;
}

export interface MessageMapping {
  file: string;
  index: number;
  controlId?: string;
  messageType?: string;
  config?: string;
  sha256?: string;
  resources?: Array<Record<string, unknown>>;
  merges?: unknown[];
  /** What the mapping could not map as sent; absent when everything mapped. */
  issues?: MappingIssue[];
  error?: MappingError;
}

export interface JsonChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

export interface MessageDiff {
  status: 'changed' | 'unchanged' | 'failed';
  from: { config?: string; sha256?: string; error?: MappingError };
  to: { config?: string; sha256?: string; error?: MappingError };
  changes: JsonChange[];
}

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  key: string;
  message: string;
}

export interface MappingTestResult {
  selected: { name: string; sha256: string } | null;
  deployed: MessageMapping;
  candidateConfig?: { name: string; sha256: string };
  candidate?: MessageMapping;
  diff?: MessageDiff;
  problems?: ConfigProblem[];
}

export interface MappingYaml {
  name: string;
  sha256: string;
  reason: string;
  deployedAt: string;
  fromFile: boolean;
  yaml: string;
}

export interface DeployOutcome {
  name: string;
  previousSha256: string | null;
  sha256: string;
  changed: boolean;
}

export interface UnmappedCode {
  system: string;
  code: string;
  display: string | null;
  source: string;
  occurrences: number;
  messages: number;
  firstSeen: string;
  lastSeen: string;
  resolvedAt: string | null;
}

export interface ResolveOutcome {
  conceptMap: { url: string; version: string; previousVersion: string };
  resolved: number;
  requeuedMessages: number;
}
