import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

import { expectValidDrafts } from './fhir-shape.ts';

const MAPPING_CODES = new Set([
  'ANCHORLINE_ERR_MAPPING_MISSING_FIELD',
  'ANCHORLINE_ERR_MAPPING_INVALID_VALUE',
  'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE',
  'ANCHORLINE_ERR_HL7_UNSUPPORTED_MESSAGE_TYPE',
  'ANCHORLINE_ERR_HL7_NO_MSH',
  'ANCHORLINE_ERR_HL7_BAD_DELIMITERS',
  'ANCHORLINE_ERR_HL7_MALFORMED',
]);

/** Field values that look like what senders put in ADT fields, plus noise. */
const fieldValue = fc.oneof(
  fc.constantFrom(
    '',
    '""',
    '12345^^^HOSP^MR',
    '12345^^^^MR~999^^^&1.2.3&ISO^NI',
    '^^^&bad oid&ISO',
    'KIM^MINSU^^^^^L',
    '홍^길동',
    '19880101',
    '198801011230+0900',
    '2024021',
    '19881301',
    'M',
    'F',
    'X',
    'Y',
    'N',
    '2',
    '0',
    'I',
    'O',
    'P',
    'W71^0712^B',
    '010-1234-5678^PRN^CP',
    '^NET^Internet^a@example.org',
    'KOR^Korean^ISO639',
    'M^Married^HL70002',
    'V1^^^HOSP^VN',
    'D1^LEE^JIHOON',
    '서울^^중구^^04524^KOR^H',
    '\\X41\\^\\F\\',
    '  ',
  ),
  fc.string({ maxLength: 12 }),
);

/** A valid ADT PID and PV1 (index = field number - 1), which the generator then damages in a few places. */
const PID_TEMPLATE = ['1', '', '12345^^^HOSP^MR~999^^^&1.2.3&ISO^NI', '', 'KIM^MINSU^^^^^L', '', '19880101', 'M', 'HONG^GD', '', '서울^^중구^^04524^KOR^H', '', '010-1234-5678^PRN^CP', '02-555-1234^WPN^PH', 'KOR^Korean^ISO639', 'M^Married^HL70002', '', '', '', '', '', '', '', 'Y', '2', '', '', '', '', 'N'];
const PV1_TEMPLATE = ['1', 'I', 'W71^0712^B', '', '', '', 'D1^LEE^JIHOON', '', '', '', '', '', '', '7', '', '', '', '', 'V1^^^HOSP^VN', ...Array<string>(24).fill(''), '20240815080000', '20240816080000'];
/** Segments after PID/PV1 that ADT messages carry: next of kin, allergy, diagnosis, insurance, merge. */
const EXTRA_TEMPLATES: Record<string, string[]> = {
  NK1: ['1', 'KIM^YOUNGHEE', 'SPO^Spouse^HL70063', '서울^^중구', '010-1111-2222^PRN^CP', '', 'N', '20200101', '', '', '', '', '', '', 'F', '19900101'],
  AL1: ['1', 'DA', 'PCN^Penicillin^L', 'SV', 'Rash~Hives', '20150101'],
  DG1: ['1', 'I10', 'J18.9^Pneumonia^I10', 'Pneumonia', '20240815', 'A'],
  IN1: ['1', 'NHI^National^L', 'NHIS^^^HOSP', 'NHIS', '', '', '', 'G1', 'Group', '', '', '20200101', '20301231', '', '1', 'KIM^MINSU', 'SEL', ...Array<string>(18).fill(''), 'P-1'],
  MRG: ['999^^^HOSP^MR', '', '', '', 'V0^^^HOSP^VN'],
};

function damaged(template: string[]) {
  return fc.array(fc.tuple(fc.nat({ max: template.length + 2 }), fieldValue), { maxLength: 4 }).map((edits) => {
    const fields = [...template];
    for (const [index, value] of edits) fields[index] = value;
    return Array.from(fields, (value) => value ?? '');
  });
}

const adtMessage = fc
  .record({
    facility: fc.constantFrom('HOSP', 'HOSP', 'HOSP', '', 'A&1.2.3&ISO', 'B^1.2.840^ISO'),
    event: fc.constantFrom('A01', 'A04', 'A08', 'A01', 'A04', 'A08', 'A02', 'A03', 'A05', 'A06', 'A07', 'A11', 'A12', 'A13', 'A28', 'A31', 'A40', 'A47', 'A17', ''),
    pid: damaged(PID_TEMPLATE),
    pv1: fc.option(damaged(PV1_TEMPLATE), { nil: undefined, freq: 5 }),
    extra: fc.array(fc.constantFrom(...Object.keys(EXTRA_TEMPLATES)).chain((name) => damaged(EXTRA_TEMPLATES[name]!).map((fields) => `${name}|${fields.join('|')}`)), { maxLength: 4 }),
  })
  .map(({ facility, event, pid, pv1, extra }) =>
    [`MSH|^~\\&|APP|${facility}|||20240101||ADT^${event}|C1|P|2.5.1`, `PID|${pid.join('|')}`, ...(pv1 === undefined ? [] : [`PV1|${pv1.join('|')}`]), ...extra].join('\r'),
  );

function mapsOrRejects(text: string): void {
  try {
    const result = mapHl7Message(parseHl7(text), defaultHl7MappingOptions);
    expectValidDrafts(result.drafts);
    // Applying the drafts to nothing gives resources with no nulls left.
    for (const draft of result.drafts) expect(Object.values(mergeDraft(undefined, draft))).not.toContain(null);
  } catch (error) {
    if (!(error instanceof AnchorlineError)) throw error;
    expect(MAPPING_CODES.has(error.code), error.code).toBe(true);
  }
}

describe('mapHl7Message properties', () => {
  // 400 generated messages: each runs the full mapping and the FHIR validator on every draft (about 30 ms apiece).
  it('every ADT message yields valid drafts or a coded rejection', { timeout: 120_000 }, () => {
    fc.assert(fc.property(adtMessage, mapsOrRejects), { numRuns: 400 });
  });

  it('mapping is deterministic', () => {
    fc.assert(
      fc.property(adtMessage, (text) => {
        let first: unknown;
        try {
          first = mapHl7Message(parseHl7(text), defaultHl7MappingOptions);
        } catch {
          return;
        }
        expect(mapHl7Message(parseHl7(text), defaultHl7MappingOptions)).toEqual(first);
      }),
      { numRuns: 300 },
    );
  });
});

/** One visit's events in some order, with a bed from a small set and an increasing event time. */
const visitStory = fc.array(
  fc.record({
    event: fc.constantFrom('A01', 'A02', 'A02', 'A03', 'A04', 'A05', 'A06', 'A07', 'A08', 'A11', 'A12', 'A13'),
    bed: fc.constantFrom('W71', 'W72', 'ICU', 'ER', '', '""'),
    priorBed: fc.constantFrom('W71', 'ER', ''),
    patientClass: fc.constantFrom('I', 'O', 'E', 'P', ''),
    discharge: fc.boolean(),
  }),
  { minLength: 1, maxLength: 8 },
);

describe('ADT events applied in sequence', () => {
  it('any order of events for one visit leaves a valid Encounter with at most one current location', () => {
    fc.assert(
      fc.property(visitStory, (story) => {
        let encounter: Record<string, unknown> | undefined;
        story.forEach(({ event, bed, priorBed, patientClass, discharge }, i) => {
          const time = `2024081${i}1200`;
          const pv1 = ['1', patientClass, bed, '', '', priorBed, ...Array<string>(12).fill(''), 'V1^^^HOSP^VN', ...Array<string>(24).fill(''), '20240810080000', discharge ? time : ''];
          const text = [`MSH|^~\\&|APP|HOSP|||${time}||ADT^${event}|C${i}|P|2.5.1`, `EVN|${event}|${time}`, 'PID|1||MRN1^^^HOSP^MR', `PV1|${pv1.join('|')}`].join('\r');
          let drafts;
          try {
            drafts = mapHl7Message(parseHl7(text), defaultHl7MappingOptions).drafts;
          } catch (error) {
            // A02 and A12 need PV1-3: a coded rejection leaves the visit as it was.
            expect(error).toBeInstanceOf(AnchorlineError);
            return;
          }
          const draft = drafts.find((d) => d.resourceType === 'Encounter');
          if (draft !== undefined) encounter = mergeDraft(encounter, draft);
        });
        if (encounter === undefined) return;
        expect(validateFhirResource(encounter)).toEqual([]);
        const locations = (encounter['location'] as Array<{ status?: string }> | undefined) ?? [];
        expect(locations.filter((entry) => entry.status === 'active').length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 200 },
    );
  });
});
