/**
 * Property: every result, order, scheduling, immunization, document and pharmacy message yields valid FHIR R4 or
 * a coded rejection (never an unexpected failure). Starts from the fixtures that map, and damages a few fields.
 */

import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { decodeHl7Bytes } from '../../formats/hl7v2/index.ts';
import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hl7v2');

/** The messages of fixtures that map, as segment lines. */
const messages: string[][] = readdirSync(ROOT)
  .filter((family) => statSync(path.join(ROOT, family)).isDirectory())
  .flatMap((family) =>
    readdirSync(path.join(ROOT, family))
      .filter((file) => file.endsWith('.hl7') && !file.startsWith('error-'))
      .map((file) => decodeHl7Bytes(readFileSync(path.join(ROOT, family, file))).text.split(/\r\n|\n|\r/).filter((line) => line !== '')),
  );

const CODED_REJECTIONS = new Set(['ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', 'ANCHORLINE_ERR_HL7_MALFORMED']);

/** Values that look like what senders put in these fields, plus noise. */
const fieldValue = fc.oneof(
  fc.constantFrom(
    '',
    '""',
    'F',
    'C',
    'X',
    'P',
    'NW',
    'CA',
    'SC',
    'RE',
    'NM',
    'SN',
    'ED',
    'TX',
    'CWE',
    '<^5',
    '^1^:^0',
    '^^-^',
    '5.5',
    '-0',
    '1e5',
    '20240931',
    '202409151230',
    '2024',
    'mg/dL',
    'toString',
    '__proto__^constructor^HL70078',
    '^AP^PDF^Base64^!!',
    '^IM^PNG^Hex^0G',
    'Booked',
    'Blocked',
    'ORD-1^OCS',
    '^^^20240915080000^^S',
    '홍^길동',
    '\\X41\\',
  ),
  fc.string({ maxLength: 8 }),
);

/** A message with `changes` applied: each replaces one field (by segment index and field number) with a value. */
function damaged(lines: string[], changes: Array<{ segment: number; field: number; value: string }>): string {
  const copy = lines.map((line) => line.split('|'));
  for (const { segment, field, value } of changes) {
    // MSH keeps its header (delimiters, type, control id) so that the mapper, not the header check, sees the damage.
    const target = copy[1 + (segment % (copy.length - 1))]!;
    const index = 1 + (field % 30);
    while (target.length <= index) target.push('');
    target[index] = value.replace(/[|\r\n]/g, '');
  }
  return copy.map((fields) => fields.join('|')).join('\r');
}

describe('non-ADT message properties', () => {
  it('every damaged message maps to valid FHIR R4 or is rejected with a mapping code', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: messages.length - 1 }),
        fc.array(fc.record({ segment: fc.nat(), field: fc.nat(), value: fieldValue }), { minLength: 1, maxLength: 4 }),
        (which, changes) => {
          const text = damaged(messages[which]!, changes);
          let drafts;
          try {
            drafts = mapHl7Message(parseHl7(text), defaultHl7MappingOptions).drafts;
          } catch (error) {
            expect(error).toBeInstanceOf(AnchorlineError);
            expect(CODED_REJECTIONS.has((error as AnchorlineError).code), (error as AnchorlineError).message).toBe(true);
            return;
          }
          for (const draft of drafts) {
            const resource = mergeDraft(undefined, draft);
            expect([...validateFhirResource(resource), ...requiredCodeIssues(resource)], `${draft.resourceType} from ${text}`).toEqual([]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
