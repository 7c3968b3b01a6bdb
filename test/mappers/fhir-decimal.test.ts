/**
 * Decimals as the HL7 v2 mappers make them: the precision and digits sent are kept (FHIR R4: a decimal's precision is
 * significant), through the draft merge and the FHIR validation, as LosslessNumbers where a JavaScript number would
 * lose them (mappers/fhir-decimal.ts).
 */
import { describe, expect, it } from 'vitest';
import { AnchorlineError } from '../../errors/index.ts';
import { LosslessNumber, cloneFhirJson, isLosslessNumber, plainNumbersView } from '../../mappers/fhir-decimal.ts';
import { toFhirDecimal, toQuantity, toStructuredNumeric } from '../../mappers/hl7v2/datatypes.ts';
import { mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const lossless = (token: string): LosslessNumber => new LosslessNumber(token);

describe('toFhirDecimal', () => {
  it.each([
    ['5.40', lossless('5.40')],
    ['5.4', 5.4],
    ['12345678901234567890', lossless('12345678901234567890')],
    ['+005.40', lossless('5.40')],
    ['.5', 0.5],
    ['5.', 5],
    ['-0.00', lossless('0.00')],
    ['-0', 0],
    ['007', 7],
    ['1.000', lossless('1.000')],
    ['-12.50', lossless('-12.50')],
    [' 42 ', 42],
  ])('%j -> %o', (text, expected) => {
    expect(toFhirDecimal(text, 'OBX-5')).toStrictEqual(expected);
  });

  it('is undefined when empty and refuses what is not NM', () => {
    expect(toFhirDecimal('', 'OBX-5')).toBeUndefined();
    for (const text of ['1e5', '5,4', 'abc', '--1', '9'.repeat(400), `0.${'1'.repeat(20000)}`]) {
      expect(() => toFhirDecimal(text, 'OBX-5'), text).toThrow(AnchorlineError);
    }
  });

  it('gives quantities and SN values the decimals as sent', () => {
    expect(toQuantity('5.40', { unit: 'mmol/L' }, 'OBX-5')).toStrictEqual({ value: lossless('5.40'), unit: 'mmol/L' });
    expect(toStructuredNumeric([['<'], ['0.50']], undefined, 'OBX-5')).toStrictEqual({ valueQuantity: { value: lossless('0.50'), comparator: '<' } });
  });
});

describe('decimals through merge and validation', () => {
  const draft = {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { text: 'Glucose' },
    valueQuantity: { value: lossless('5.40'), unit: 'mmol/L' },
    referenceRange: [{ low: { value: lossless('3.90') }, high: { value: 6.1 } }],
  };

  it('keeps LosslessNumbers when a draft is merged, and the result is valid FHIR', () => {
    const merged = mergeDraft(undefined, draft) as typeof draft;
    expect(isLosslessNumber(merged.valueQuantity.value)).toBe(true);
    expect(merged.valueQuantity.value).toStrictEqual(lossless('5.40'));
    expect(merged.referenceRange[0]!.low.value).toStrictEqual(lossless('3.90'));
    expect(validateFhirResource(merged)).toEqual([]);
    // A decimal that is not a number at all is still refused.
    expect(validateFhirResource({ ...merged, valueQuantity: { value: '5.40' } })).not.toEqual([]);
  });

  it('clones without losing the class, and shows the validator plain numbers without copying what has none', () => {
    const copy = cloneFhirJson(draft);
    expect(copy).toStrictEqual(draft);
    expect(copy.valueQuantity).not.toBe(draft.valueQuantity);
    expect(copy.valueQuantity.value).toBe(draft.valueQuantity.value);
    const plain = plainNumbersView(draft);
    expect(plain.valueQuantity.value).toBe(5.4);
    expect(draft.valueQuantity.value).toStrictEqual(lossless('5.40'));
    const none = { resourceType: 'Patient', id: 'p1', name: [{ family: 'Kim' }] };
    expect(plainNumbersView(none)).toBe(none);
  });
});
