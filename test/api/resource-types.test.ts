/**
 * Every resource type the mappers make is one the FHIR API reads and searches: a type missing from the search index
 * would be stored, anchored and audited, and then answer 404 to everyone. Checked against what the public HL7 v2 and
 * C-CDA corpora produce (their stored expectations), and against what the BAR and REF mappings make.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { SEARCH_PARAMETERS } from '../../store/index.ts';

const CORPUS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus');

function producedTypes(file: string): Set<string> {
  const expected = JSON.parse(readFileSync(path.join(CORPUS, file), 'utf8')) as Record<string, { resources?: Record<string, number> }>;
  return new Set(Object.values(expected).flatMap((entry) => Object.keys(entry.resources ?? {})));
}

describe('resource types the API serves', () => {
  it('include every type the HL7 v2 and C-CDA corpora map to', () => {
    const produced = new Set([...producedTypes('hl7v2/expected.json'), ...producedTypes('ccda/expected.json')]);
    expect(produced.size).toBeGreaterThan(20);
    for (const type of ['EpisodeOfCare', 'Task', 'Device', 'MedicationStatement', 'FamilyMemberHistory']) expect(produced, type).toContain(type);
    expect([...produced].filter((type) => !(type in SEARCH_PARAMETERS)).sort()).toEqual([]);
  });
});
