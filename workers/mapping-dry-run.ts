/**
 * Mapping dry runs: map a message as the ingest worker would, but without a database, and compare what two sets of
 * configs make of it. The command line (`anchorline mapping test|diff`) and the console's mapping tester
 * (POST /admin/mappings/test) both use this, so an operator sees in the browser exactly what the CLI prints.
 *
 * Pure: nothing here reads or writes storage. Resources are the drafts applied to nothing, as for a new patient.
 */
import { decodeHl7Bytes, isBatchSegmentLine, parseHl7 } from '../formats/hl7v2/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
import { isLosslessNumber } from '../anchor/index.ts';
import { CHARSET_FALLBACK_ISSUE, mapHl7Message, checkMappedResource, mergeDraft, type MappingIssue, type PatientMerge } from '../mappers/index.ts';
import type { MappingSource } from './ingest.ts';

/** One message of a corpus, and where it came from. */
export interface CorpusMessage {
  file: string;
  /** 1-based position in its file. */
  index: number;
  bytes: Buffer;
}

/**
 * The messages of a file's bytes. A message starts at an MSH segment, or at the first line after a blank line or a
 * batch segment (FHS, BHS, BTS, FTS, which are not part of any message); segments end at CR, LF or CRLF, and MLLP
 * framing bytes (VT, FS) count as line ends. Bytes are cut, not decoded:
 * the charsets MSH-18 may name are ASCII-compatible, so CR and LF bytes are line ends in all of them.
 */
export function splitMessages(bytes: Buffer): Buffer[] {
  // latin1 maps each byte to one character and back, so slicing the string slices the bytes.
  const lines = bytes.toString('latin1').split(/\r\n|\r|\n|\x0b|\x1c/);
  const messages: string[][] = [];
  let current: string[] | undefined;
  let blank = true;
  for (const line of lines) {
    // Batch segments (FHS, BHS, BTS, FTS) frame messages, as the intake reads a batch (formats/hl7v2/batch.ts).
    if (line.trim() === '' || isBatchSegmentLine(line)) {
      blank = true;
      continue;
    }
    if (current === undefined || blank || line.startsWith('MSH')) {
      current = [];
      messages.push(current);
    }
    current.push(line);
    blank = false;
  }
  return messages.map((segments) => Buffer.from(segments.join('\r') + '\r', 'latin1'));
}

/** What one message maps to under one set of configs. */
export interface MessageMapping {
  file: string;
  index: number;
  controlId?: string;
  messageType?: string;
  /** The config the message selected, and its version. */
  config?: string;
  sha256?: string;
  resources?: Array<Record<string, unknown>>;
  merges?: PatientMerge[];
  /** What the mapping could not map as sent, field by field (mappers/issues.ts); absent when everything mapped. */
  issues?: MappingIssue[];
  error?: { code: string; location?: string; detail?: string };
}

/**
 * Maps one message as the ingest worker would, without a database: decode by MSH-18, select the config, map, apply
 * the drafts to nothing (several drafts of one resource merge in order), and validate each resource as FHIR R4.
 */
export function mapMessage(message: CorpusMessage, configs: MappingSource, defaultCharset: string): MessageMapping {
  const result: MessageMapping = { file: message.file, index: message.index };
  try {
    const decoded = decodeHl7Bytes(message.bytes, defaultCharset);
    result.controlId = decoded.header.controlId;
    result.messageType = [decoded.header.messageType, decoded.header.triggerEvent].filter((part) => part !== '').join('^');
    const config = configs.select(decoded.header);
    result.config = config.name;
    result.sha256 = config.sha256;
    const mapped = mapHl7Message(parseHl7(decoded.text), config.options);
    const resources = new Map<string, Record<string, unknown>>();
    for (const draft of mapped.drafts) {
      const key = `${draft.resourceType}/${draft.id}`;
      resources.set(key, mergeDraft(resources.get(key), draft));
    }
    const issues = [...(mapped.issues ?? [])];
    if (decoded.declaredCharsetIgnored) {
      issues.unshift({ ...CHARSET_FALLBACK_ISSUE });
    }
    const fatal = config.options.fatalIssues ?? [];
    const fatalIssue = issues.find((issue) => fatal.includes(issue.code));
    if (fatalIssue !== undefined) {
      result.issues = issues;
      result.error = { code: 'ANCHORLINE_ERR_MAPPING_FATAL_ISSUE', location: fatalIssue.location, detail: `${fatalIssue.code} at ${fatalIssue.location}, which this source's mapping config makes fatal` };
      return result;
    }
    // As the ingest job does: an invalid Patient fails the message, any other invalid resource is left out with an issue.
    for (const [key, resource] of resources) {
      const check = checkMappedResource(resource);
      if (check.kind === 'valid') continue;
      if (check.kind === 'invalid' && resource.resourceType === 'Patient') {
        result.error = { code: 'ANCHORLINE_ERR_MAPPING_INVALID_FHIR', detail: check.issue.detail };
        return result;
      }
      issues.push(check.issue);
      if (check.kind === 'repaired') resources.set(key, check.resource);
      else resources.delete(key);
    }
    result.resources = [...resources.values()];
    if (mapped.merges && mapped.merges.length > 0) result.merges = mapped.merges;
    if (issues.length > 0) result.issues = issues;
  } catch (error) {
    result.error = isAnchorlineError(error)
      ? { code: error.code, ...(error.location ? { location: error.location } : {}), ...(error.detail ? { detail: error.detail } : {}) }
      : { code: 'ANCHORLINE_ERR_INTERNAL', detail: (error as Error).message ?? String(error) };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Differences

/** One difference between two JSON values: a path and what was there before and after (absent = undefined). */
export interface JsonChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

/** The differences between two JSON values, by path: objects key by key (in `from`'s order, then added keys), arrays by index. */
export function jsonDiff(from: unknown, to: unknown, at = ''): JsonChange[] {
  if (isPlainObject(from) && isPlainObject(to)) {
    const keys = [...Object.keys(from), ...Object.keys(to).filter((key) => !Object.hasOwn(from, key))];
    return keys.flatMap((key) => {
      const child = `${at}${/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? (at === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`}`;
      if (!Object.hasOwn(to, key)) return [{ path: child, from: from[key] }];
      if (!Object.hasOwn(from, key)) return [{ path: child, to: to[key] }];
      return jsonDiff(from[key], to[key], child);
    });
  }
  if (Array.isArray(from) && Array.isArray(to)) {
    const changes: JsonChange[] = [];
    for (let i = 0; i < Math.max(from.length, to.length); i++) {
      if (i >= to.length) changes.push({ path: `${at}[${i}]`, from: from[i] });
      else if (i >= from.length) changes.push({ path: `${at}[${i}]`, to: to[i] });
      else changes.push(...jsonDiff(from[i], to[i], `${at}[${i}]`));
    }
    return changes;
  }
  return JSON.stringify(from) === JSON.stringify(to) ? [] : [{ path: at, from, to }];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  // A decimal kept as sent (a LosslessNumber, `5.40`) is compared as a value, not member by member.
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !isLosslessNumber(value);
}

/** A message's output keyed for comparison: resources by type and position (Patient[0]), so a changed id shows as one. */
function comparable(mapping: MessageMapping): Map<string, unknown> {
  const keyed = new Map<string, unknown>();
  const seen = new Map<string, number>();
  for (const resource of mapping.resources ?? []) {
    const type = String(resource.resourceType);
    const n = seen.get(type) ?? 0;
    seen.set(type, n + 1);
    keyed.set(`${type}[${n}]`, resource);
  }
  if (mapping.merges) keyed.set('merges', mapping.merges);
  return keyed;
}

export interface MessageDiff {
  file: string;
  index: number;
  controlId?: string;
  messageType?: string;
  status: 'changed' | 'unchanged' | 'failed';
  from: { config?: string; sha256?: string; error?: MessageMapping['error'] };
  to: { config?: string; sha256?: string; error?: MessageMapping['error'] };
  changes: JsonChange[];
}

/** What changes in a message's output from one mapping to another; `failed` when either side could not map it. */
export function diffMessage(from: MessageMapping, to: MessageMapping): MessageDiff {
  const side = (m: MessageMapping): MessageDiff['from'] => ({ ...(m.config ? { config: m.config } : {}), ...(m.sha256 ? { sha256: m.sha256 } : {}), ...(m.error ? { error: m.error } : {}) });
  const failed = from.error !== undefined || to.error !== undefined;
  const changes: JsonChange[] = [];
  if (!failed) {
    const before = comparable(from);
    const after = comparable(to);
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      if (!after.has(key)) changes.push({ path: key, from: before.get(key) });
      else if (!before.has(key)) changes.push({ path: key, to: after.get(key) });
      else changes.push(...jsonDiff(before.get(key), after.get(key), key));
    }
    // What one version could not map as sent and the other could (or the reverse) is a change too.
    const issuesOf = (m: MessageMapping): string[] => (m.issues ?? []).map((issue) => `${issue.code} at ${issue.location}`);
    const [issuesBefore, issuesAfter] = [issuesOf(from), issuesOf(to)];
    for (const issue of issuesBefore) if (!issuesAfter.includes(issue)) changes.push({ path: 'issues', from: issue });
    for (const issue of issuesAfter) if (!issuesBefore.includes(issue)) changes.push({ path: 'issues', to: issue });
  }
  return {
    file: from.file,
    index: from.index,
    ...(from.controlId !== undefined ? { controlId: from.controlId } : {}),
    ...(from.messageType !== undefined ? { messageType: from.messageType } : {}),
    status: failed ? 'failed' : changes.length > 0 ? 'changed' : 'unchanged',
    from: side(from),
    to: side(to),
    changes,
  };
}
