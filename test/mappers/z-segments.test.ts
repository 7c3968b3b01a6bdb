/**
 * Z segments mapped by a source's rules (options.zSegments, mappers/hl7v2/z-segments.ts), against fixtures on disk:
 * test/fixtures/z-segments/NAME.hl7 mapped with the rules of rules.options.json and without them. What the rules are
 * responsible for is the difference between the two, which NAME.expected.json holds: per resource type, each element
 * the rules changed (`appended` to the message's own list, or the element's new value), the Observations they made
 * and the issues they raised. Everything else a message maps to is other mappers' business and must be the same
 * with rules and without.
 *
 * UPDATE_Z_SEGMENT_FIXTURES=1 rewrites the expected files from what the mapper does; review the diff.
 */

import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { decodeHl7Bytes } from '../../formats/hl7v2/index.ts';
import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { parseJson, stringifyJson } from '../../anchor/index.ts';
import {
  Z_SEGMENT_TARGETS,
  type Hl7MappingOptions,
  type MappingIssue,
  type MappingResult,
  type ResourceDraft,
  type ZSegmentRule,
  type ZSegmentTarget,
  defaultHl7MappingOptions,
  mapHl7Message,
  mergeDraft,
  validateFhirResource,
} from '../../mappers/index.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'z-segments');
const UPDATE = process.env['UPDATE_Z_SEGMENT_FIXTURES'] === '1';

const RULES = (parseJson(readFileSync(path.join(ROOT, 'rules.options.json'), 'utf8')) as Pick<Hl7MappingOptions, 'zSegments'>).zSegments!;
const WITH_RULES: Hl7MappingOptions = { ...defaultHl7MappingOptions, zSegments: RULES };

const fixtures = readdirSync(ROOT)
  .filter((file) => file.endsWith('.hl7'))
  .map((file) => file.slice(0, -'.hl7'.length))
  .sort();

function messageText(name: string): string {
  return decodeHl7Bytes(readFileSync(path.join(ROOT, `${name}.hl7`))).text.replace(/\r\n|\n/g, '\r');
}

function map(text: string, options: Hl7MappingOptions): MappingResult {
  return mapHl7Message(parseHl7(text), options);
}

/** What the rules did to a message: the drafts and issues the mapping with them has beyond the one without. */
interface ZOutcome {
  changed: Record<string, Record<string, unknown>>;
  observations: ResourceDraft[];
  issues: MappingIssue[];
}

const same = (a: unknown, b: unknown): boolean => stringifyJson(a) === stringifyJson(b);

function zOutcome(withRules: MappingResult, without: MappingResult): ZOutcome {
  const changed: ZOutcome['changed'] = {};
  const observations: ResourceDraft[] = [];
  for (const draft of withRules.drafts) {
    // The Provenance names every resource, the rules' Observations too (checked below).
    if (draft.resourceType === 'Provenance') continue;
    const before = without.drafts.find((other) => other.resourceType === draft.resourceType && other.id === draft.id);
    if (before === undefined) {
      observations.push(draft);
      continue;
    }
    for (const element of new Set([...Object.keys(draft), ...Object.keys(before)])) {
      const [now, was] = [draft[element], before[element]];
      if (same(now, was)) continue;
      const appended = Array.isArray(now) && Array.isArray(was) && same(now.slice(0, was.length), was);
      (changed[draft.resourceType] ??= {})[element] = appended ? { appended: (now as unknown[]).slice((was as unknown[]).length) } : now === undefined ? { absent: true } : now;
    }
  }
  const issues = (withRules.issues ?? []).filter((issue) => !(without.issues ?? []).some((other) => same(issue, other)));
  return { changed, observations, issues };
}

describe('Z segments mapped by rules', () => {
  it.each(fixtures)('%s', (name) => {
    const text = messageText(name);
    const withRules = map(text, WITH_RULES);
    const without = map(text, defaultHl7MappingOptions);
    const outcome = zOutcome(withRules, without);

    const expectedFile = path.join(ROOT, `${name}.expected.json`);
    if (UPDATE || !existsSync(expectedFile)) writeFileSync(expectedFile, `${stringifyJson(outcome, 2)}\n`);
    expect(parseJson(stringifyJson(outcome))).toEqual(parseJson(readFileSync(expectedFile, 'utf8')));

    // The rules add, never take away: every draft without them is there with them, and only the rules' elements differ.
    expect(withRules.drafts.filter((d) => d.resourceType !== 'Provenance').length).toBe(without.drafts.filter((d) => d.resourceType !== 'Provenance').length + outcome.observations.length);
    // Every draft is valid FHIR R4 applied to nothing, and the Provenance names the rules' Observations.
    for (const draft of withRules.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
    const provenance = withRules.drafts.find((d) => d.resourceType === 'Provenance');
    for (const observation of outcome.observations) expect(stringifyJson(provenance)).toContain(`Observation/${observation.id}`);
  });

  it('maps each target: Patient and Encounter extensions and identifiers, and Observations', () => {
    const { changed, observations } = zOutcome(map(messageText('adt-a01-z-segments'), WITH_RULES), map(messageText('adt-a01-z-segments'), defaultHl7MappingOptions));
    expect(Object.keys(changed['Patient']!).sort()).toEqual(['extension', 'identifier']);
    expect(Object.keys(changed['Encounter']!).sort()).toEqual(['extension', 'identifier']);
    expect(observations.map((o) => (o['code'] as { coding: Array<{ code: string }> }).coding[0]!.code).sort()).toEqual(['72166-2', 'triage']);
    // The rules' extensions follow the ones PID-10 gives (US Core race), in rule order.
    const patientExtensions = (changed['Patient']!['extension'] as { appended: Array<{ url: string }> }).appended.map((e) => e.url);
    expect(patientExtensions).toEqual([
      'https://fhir.example.org/StructureDefinition/vip-flag',
      'https://fhir.example.org/StructureDefinition/preferred-ward',
      'https://fhir.example.org/StructureDefinition/preferred-ward',
      'https://fhir.example.org/StructureDefinition/guarantor-name',
      'https://fhir.example.org/StructureDefinition/priority-band',
      'https://fhir.example.org/StructureDefinition/consent-expiry',
    ]);
  });

  it('turns a value that does not read as its type into an issue at its place, and maps the rest', () => {
    const { changed, observations, issues } = zOutcome(map(messageText('degraded-z-values'), WITH_RULES), map(messageText('degraded-z-values'), defaultHl7MappingOptions));
    expect(issues.map((issue) => `${issue.code} ${issue.location} ${issue.value}`)).toEqual([
      'ANCHORLINE_ISSUE_INVALID_VALUE ZPI[2]-2 maybe',
      'ANCHORLINE_ISSUE_INVALID_VALUE ZPI[2]-9 20241331',
      'ANCHORLINE_ISSUE_INVALID_VALUE ZV1-2 three',
      'ANCHORLINE_ISSUE_INVALID_VALUE ZV1-4 2025-03-01',
      'ANCHORLINE_ISSUE_INVALID_VALUE ZV1-7 7,5',
      'ANCHORLINE_ISSUE_INVALID_VALUE ZV1-5 abc',
    ]);
    // What did read: the first ZPI's flag and identifier, the visit's episode identifier.
    expect((changed['Patient']!['extension'] as { appended: unknown[] }).appended).toEqual([{ url: 'https://fhir.example.org/StructureDefinition/vip-flag', valueBoolean: false }]);
    expect((changed['Encounter']!['identifier'] as { appended: unknown[] }).appended).toEqual([{ system: 'https://fhir.example.org/sid/episode', value: 'EP-77' }]);
    expect(observations).toEqual([]);
  });

  it('leaves Z segments without rules alone: the mapping is the one without rules, with no issue about them', () => {
    const text = messageText('unruled-z-segments');
    expect(stringifyJson(map(text, WITH_RULES))).toBe(stringifyJson(map(text, defaultHl7MappingOptions)));
    expect(stringifyJson(map(text, WITH_RULES).issues ?? [])).not.toMatch(/"location":"Z/);
  });

  it('reports a value for a resource the message does not produce, and makes Observations without a visit', () => {
    const { changed, observations, issues } = zOutcome(map(messageText('adt-a28-no-visit'), WITH_RULES), map(messageText('adt-a28-no-visit'), defaultHl7MappingOptions));
    expect(changed['Encounter']).toBeUndefined();
    expect(issues.map((issue) => `${issue.severity} ${issue.code} ${issue.location}`)).toEqual(['information ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED ZV1-2']);
    expect(observations.map((o) => [o['encounter'], (o['subject'] as { reference: string }).reference.startsWith('Patient/')])).toEqual([
      [null, true],
      [null, true],
    ]);
  });

  it('removes the extension list when every field it is fed by is sent as ""', () => {
    const { changed } = zOutcome(map(messageText('adt-a08-cleared'), WITH_RULES), map(messageText('adt-a08-cleared'), defaultHl7MappingOptions));
    expect(changed['Patient']).toEqual({ extension: null });
  });

  it('names one Observation per Z segment, the same one when the segment is sent again', () => {
    const text = messageText('adt-a01-z-segments');
    const first = map(text, WITH_RULES).drafts.filter((d) => d.resourceType === 'Observation');
    const again = map(text.replace('ZV1|1|3|EP-77|202503011000|12', 'ZV1|1|4|EP-77|202503011000|14').replace('|A01|Z0001|', '|A08|Z0009|'), WITH_RULES).drafts.filter((d) => d.resourceType === 'Observation');
    expect(again.map((o) => o.id).sort()).toEqual(first.map((o) => o.id).sort());
    const twice = map(`${text}\rZV1|2|2|EP-78||9`, WITH_RULES).drafts.filter((d) => d.resourceType === 'Observation');
    expect(new Set(twice.map((o) => o.id)).size).toBe(3);
  });
});

describe('Z segment values, whatever is sent', () => {
  /** A rule of every type for every target that takes it, each on its own field of ZZZ. */
  const everyRule: ZSegmentRule[] = (Object.entries(Z_SEGMENT_TARGETS) as Array<[ZSegmentTarget, (typeof Z_SEGMENT_TARGETS)[ZSegmentTarget]]>).flatMap(([to, spec]) =>
    spec.types.map((type) => ({ to, type })),
  ).map(({ to, type }, i) => ({
    field: `ZZZ-${i + 1}`,
    to,
    type,
    ...(to.endsWith('.extension') ? { url: `https://fhir.example.org/StructureDefinition/z${i + 1}` } : {}),
    ...(to === 'Observation' ? { code: { system: 'https://fhir.example.org/CodeSystem/z', code: `z${i + 1}` } } : {}),
  }));
  const options: Hl7MappingOptions = { ...defaultHl7MappingOptions, zSegments: { ZZZ: everyRule } };

  const value = fc.oneof(
    fc.constantFrom('', '""', 'Y', 'no', '12', '-0', '3.50', '99999999999', '20250301', '202503011230+0900', '2025-03-01', '12^kg', 'A^Alpha^LN', 'X&Y^Z', 'ID1^^^AUTH^MR', '^^^&1.2.3&ISO', ' padded ', 'a~b~c', '\\F\\'),
    fc.string({ maxLength: 12 }).map((text) => text.replace(/[|\r\n\\]/g, '')),
  );

  it('yields valid FHIR and issues, never a failed message', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: everyRule.length, maxLength: everyRule.length }), (values) => {
        const text = [
          'MSH|^~\\&|HIS|SEOULGEN|||20250301093000||ADT^A01|P1|P|2.5.1',
          'EVN|A01|20250301093000',
          'PID|1||P1001^^^SEOULGEN^MR||KIM^MINSU||19800101|M',
          'PV1|1|I|W1^101^1^SEOULGEN||||||||||||||||V2001^^^SEOULGEN',
          `ZZZ|${values.join('|')}`,
        ].join('\r');
        const result = map(text, options);
        for (const draft of result.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), stringifyJson(draft)).toEqual([]);
        for (const issue of result.issues ?? []) if (issue.location.startsWith('ZZZ')) expect(issue.location).toMatch(/^ZZZ-\d+$/);
      }),
      { numRuns: 150 },
    );
  });
});
