/**
 * Runs one file of the public DICOM corpus (test/fixtures/corpus/dicom) as the intake and the ingest worker read it,
 * without a database (the corpus test and scripts/corpus-dicom.ts share it): readDicomInstance judges the whole file
 * as the intake does, the header prefix the intake stores is parsed again as the worker parses it, the instance is
 * mapped with the default config and each resource is checked as the worker checks it before storing. The outcome is
 * what the stored expectation keeps.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isAnchorlineError } from '../../errors/index.ts';
import { asPart10File, parseDicomInstance, readDicomInstance } from '../../formats/dicom/index.ts';
import { checkMappedResource, defaultHl7MappingOptions, mapDicomInstance, mergeDraft } from '../../mappers/index.ts';

export interface DicomCorpusEntry {
  file: string;
  source: string;
  sourcePath: string;
  commit: string;
  licence: string;
  bytes: number;
  sha256: string;
  note?: string;
}

export interface DicomCorpusOutcome {
  /** The catalogue code the intake refuses the file with, and where; absent when it is stored and mapped. */
  refused?: { code: string; location: string | null };
  transferSyntaxUid?: string;
  /** (0008,0060) as read; absent when the instance has none. */
  modality?: string;
  /** (0008,0005) as sent. */
  specificCharacterSet?: string;
  textDecoding?: string;
  /** Resource type -> how many. */
  resources?: Record<string, number>;
  /** Each HumanName of the Patient: its representation (A, IDE, SYL) and family name. */
  names?: string[];
  /** `code@location:severity` of each mapping issue, sorted. */
  issues?: string[];
}

/** The options the engine reads instances with (dicom.maxInstanceBytes' default order of magnitude). */
const OPTIONS = { maxInflatedBytes: 64 * 1024 * 1024 };

export function readDicomCorpus(root: string): DicomCorpusEntry[] {
  return JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8')) as DicomCorpusEntry[];
}

/** The outcome, and what breaks the engine's own rules (not valid FHIR, a prefix that reads differently). */
export async function runDicomCorpusFile(received: Buffer): Promise<{ outcome: DicomCorpusOutcome; problems: string[] }> {
  const problems: string[] = [];
  let parsed;
  let bytes: Buffer;
  try {
    // As the intake: an instance without File Meta Information is read (and stored) inside a group of our own.
    bytes = asPart10File(received);
    parsed = await readDicomInstance(bytes, OPTIONS);
  } catch (error) {
    if (!isAnchorlineError(error)) return { outcome: { refused: { code: 'THROWN', location: null } }, problems: [`threw ${(error as Error).name}`] };
    return { outcome: { refused: { code: error.code, location: error.location ?? null } }, problems };
  }
  const { header, headerLength } = parsed;
  // The worker gets the stored prefix only (the whole file when the data set is deflated).
  const again = parseDicomInstance(bytes.subarray(0, headerLength), OPTIONS).header;
  if (JSON.stringify(again) !== JSON.stringify(header)) problems.push('the stored header prefix reads differently from the whole file');
  const result = mapDicomInstance(header, {
    options: defaultHl7MappingOptions,
    blobSha256: createHash('sha256').update(bytes).digest('hex'),
    dicomwebBaseUrl: 'http://127.0.0.1:8080/dicomweb',
    sendingAeTitle: 'MODALITY1',
  });
  const resources: Record<string, number> = {};
  const issues = (result.issues ?? []).map((issue) => `${issue.code}@${issue.location}:${issue.severity}`);
  let names: string[] = [];
  for (const draft of result.drafts) {
    const resource = mergeDraft(undefined, draft);
    const check = checkMappedResource(resource);
    if (check.kind !== 'valid') problems.push(`${String(resource.resourceType)} not valid FHIR R4: ${check.issue.detail}`);
    resources[String(resource.resourceType)] = (resources[String(resource.resourceType)] ?? 0) + 1;
    if (resource.resourceType === 'Patient') {
      const list = (resource.name ?? []) as Array<{ family?: string; extension?: Array<{ valueCode?: string }> }>;
      names = list.map((name) => `${name.extension?.[0]?.valueCode ?? 'A'}:${name.family ?? ''}`);
    }
  }
  return {
    outcome: {
      transferSyntaxUid: header.transferSyntaxUid,
      ...(header.series.modality === undefined ? {} : { modality: header.series.modality }),
      specificCharacterSet: header.specificCharacterSet,
      textDecoding: header.textDecoding,
      resources,
      names,
      issues: [...new Set(issues)].sort(),
    },
    problems,
  };
}
