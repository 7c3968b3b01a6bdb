/**
 * C-CDA values keep the precision sent: @medplum/ccda reads PQ values and reference range bounds with parseFloat
 * (`5.40` -> 5.4); the conversion puts back the decimal as sent (mappers/cda/normalize.ts records it,
 * mappers/cda/resources.ts restores it), so the Observation holds `5.40` as FHIR R4 says it must.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringifyJson } from '../../anchor/index.ts';
import { convertCdaDocument } from '../../mappers/cda/index.ts';
import { LosslessNumber } from '../../mappers/fhir-decimal.ts';
import { defaultHl7MappingOptions, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const SAMPLE = readFileSync(new URL('../fixtures/cda/sample-ccd-new-sections.xml', import.meta.url), 'utf8');

function convert(xml: string) {
  const bytes = Buffer.from(xml);
  return convertCdaDocument(bytes, { mapping: defaultHl7MappingOptions, source: { sha256: createHash('sha256').update(bytes).digest(), size: bytes.length } });
}

describe('C-CDA decimals', () => {
  it('keeps a PQ value and its reference range with the precision sent', () => {
    const original = '<value xsi:type="PQ" value="6.7" unit="10+3/ul"/>';
    expect(SAMPLE).toContain(original);
    const xml = SAMPLE.replace(original, '<value xsi:type="PQ" value="6.70" unit="10+3/ul"/>')
      .replace('<low value="4.3" unit="10+3/ul"/>', '<low value="4.30" unit="10+3/ul"/>')
      .replace('<high value="10.8" unit="10+3/ul"/>', '<high value="10.80" unit="10+3/ul"/>');
    const wbc = convert(xml).drafts.find((draft) => draft.resourceType === 'Observation' && JSON.stringify(draft.code).includes('33765-9')) as Record<string, any>;
    expect(wbc).toBeDefined();
    expect(wbc.valueQuantity.value).toStrictEqual(new LosslessNumber('6.70'));
    expect(wbc.referenceRange[0].low.value).toStrictEqual(new LosslessNumber('4.30'));
    expect(wbc.referenceRange[0].high.value).toStrictEqual(new LosslessNumber('10.80'));
    const resource = mergeDraft(undefined, wbc as never);
    expect(validateFhirResource(resource)).toEqual([]);
    expect(stringifyJson(resource.valueQuantity)).toContain('"value":6.70');

    // Without trailing zeros nothing changes: plain numbers, as before.
    const plain = convert(SAMPLE).drafts.find((draft) => draft.resourceType === 'Observation' && JSON.stringify(draft.code).includes('33765-9')) as Record<string, any>;
    expect(plain.valueQuantity.value).toBe(6.7);
    expect(plain.referenceRange[0].low.value).toBe(4.3);
  });
});
