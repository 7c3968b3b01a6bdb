/**
 * Runs one corpus message as the ingest job maps it, without a database (the corpus test and scripts/corpus-hl7v2.ts
 * share it): decode by MSH-18, parse, map with the default config, merge each resource's drafts, validate. The
 * outcome is what the stored expectation keeps: resource types with counts, issue codes, or the error code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isAnchorlineError } from '../../errors/index.ts';
import { decodeHl7Bytes, parseHl7 } from '../../formats/hl7v2/index.ts';
import { checkMappedResource, defaultHl7MappingOptions, isSupportedMessageType, mapHl7Message, mergeDraft } from '../../mappers/index.ts';

export interface CorpusEntry {
  file: string;
  source: string;
  licence: string;
  messageType: string;
  version: string;
  invalid?: boolean;
}

export interface CorpusOutcome {
  /** MSH-9 as read (type^trigger), when the header could be read. */
  messageType?: string;
  /** Resource type -> how many distinct resources the message wrote. */
  resources: Record<string, number>;
  /** `code@location:severity` of each mapping issue, sorted. */
  issues: string[];
  /** The catalogue code the message failed with; absent when it mapped. */
  error?: string;
}

/** The corpus manifest's entries with their files (the deliberately broken ones under invalid/ included). */
export function readCorpus(root: string): CorpusEntry[] {
  return JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8')) as CorpusEntry[];
}

/**
 * Sources write segments ended by CR, LF or CRLF (files in repositories rarely keep the CR the wire uses); senders
 * send CR, so the file's line ends are made CR first, as a sender's interface engine would.
 */
export function asSent(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\n/g, '\r'), 'latin1');
}

export function runCorpusMessage(raw: Buffer): CorpusOutcome {
  const outcome: CorpusOutcome = { resources: {}, issues: [] };
  try {
    const decoded = decodeHl7Bytes(asSent(raw), 'utf-8');
    outcome.messageType = [decoded.header.messageType, decoded.header.triggerEvent].filter((part) => part !== '').join('^');
    if (!isSupportedMessageType(decoded.header.messageType, decoded.header.triggerEvent)) {
      outcome.error = 'ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE';
      return outcome;
    }
    const result = mapHl7Message(parseHl7(decoded.text), defaultHl7MappingOptions);
    const merged = new Map<string, Record<string, unknown>>();
    for (const draft of result.drafts) merged.set(`${draft.resourceType}/${draft.id}`, mergeDraft(merged.get(`${draft.resourceType}/${draft.id}`), draft));
    const issues = (result.issues ?? []).map((issue) => `${issue.code}@${issue.location}:${issue.severity}`);
    if (decoded.declaredCharsetIgnored) issues.push('ANCHORLINE_ISSUE_CHARSET_FALLBACK@MSH-18:warning');
    for (const resource of merged.values()) {
      const type = String(resource.resourceType);
      const check = checkMappedResource(resource);
      if (check.kind !== 'valid') issues.push(`${check.issue.code}@${check.issue.location}:${check.issue.severity}`);
      if (check.kind === 'invalid') {
        if (type === 'Patient') throw Object.assign(new Error('invalid Patient'), { code: 'ANCHORLINE_ERR_MAPPING_INVALID_FHIR' });
        continue;
      }
      outcome.resources[type] = (outcome.resources[type] ?? 0) + 1;
    }
    outcome.resources = Object.fromEntries(Object.entries(outcome.resources).sort(([a], [b]) => a.localeCompare(b)));
    outcome.issues = [...new Set(issues)].sort();
  } catch (error) {
    outcome.error = isAnchorlineError(error) ? error.code : ((error as { code?: string }).code ?? 'ANCHORLINE_ERR_INTERNAL');
  }
  return outcome;
}
