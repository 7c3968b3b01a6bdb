/**
 * The value converters the result, order, immunization, document and pharmacy mappers share: NM, SN, units, ED.
 * The fixtures exercise them in messages; these pin the rules case by case.
 */

import { describe, expect, it } from 'vitest';

import type { Hl7Repetition } from '../../formats/hl7v2/types.ts';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { toAttachment, toDecimal, toQuantityUnit, toStructuredNumeric } from '../../mappers/hl7v2/datatypes.ts';

/** A repetition from `^`-separated components with `&`-separated subcomponents, as the parser would give it. */
function rep(text: string): Hl7Repetition {
  return text.split('^').map((component) => component.split('&'));
}

function errorOf(f: () => unknown): { code: ErrorCode; location: string | undefined } | undefined {
  try {
    f();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(AnchorlineError);
    return { code: (error as AnchorlineError).code, location: (error as AnchorlineError).location };
  }
}

const INVALID = { code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location: 'OBX-5' };
const MG_DL = { unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' };

describe('NM -> decimal', () => {
  it.each([
    ['12', 12],
    ['+1.50', 1.5],
    ['-0.25', -0.25],
    ['.5', 0.5],
    ['5.', 5],
    ['-0', 0],
    ['  7 ', 7],
  ])('%s -> %s', (text, value) => expect(toDecimal(text, 'OBX-5')).toBe(value));

  it('empty and "" are no value', () => {
    expect(toDecimal('', 'OBX-5')).toBeUndefined();
    expect(toDecimal('""', 'OBX-5')).toBeUndefined();
  });

  it.each(['<5', '1,5', '1e3', 'NaN', '5 mg', '--1', '.'])('%s is not NM', (text) => {
    expect(errorOf(() => toDecimal(text, 'OBX-5'))).toEqual(INVALID);
  });
});

describe('units', () => {
  it('maps common unit strings to UCUM, keeping the text sent', () => {
    expect(toQuantityUnit('mg/dl', '', '')).toEqual({ unit: 'mg/dl', system: 'http://unitsofmeasure.org', code: 'mg/dL' });
    expect(toQuantityUnit('10^3/uL', '', '')).toEqual({ unit: '10^3/uL', system: 'http://unitsofmeasure.org', code: '10*3/uL' });
    expect(toQuantityUnit('IU/L', 'international units per liter', '')).toEqual({
      unit: 'international units per liter',
      system: 'http://unitsofmeasure.org',
      code: '[IU]/L',
    });
  });

  it('trusts a unit the sender codes as UCUM', () => {
    expect(toQuantityUnit('{CFU}/mL', 'CFU/mL', 'UCUM')).toEqual({ unit: 'CFU/mL', system: 'http://unitsofmeasure.org', code: '{CFU}/mL' });
  });

  it('keeps an unknown unit as text only, and no unit as none', () => {
    expect(toQuantityUnit('cells/hpf', '', '')).toEqual({ unit: 'cells/hpf' });
    expect(toQuantityUnit('toString', '', '')).toEqual({ unit: 'toString' });
    expect(toQuantityUnit('', '', '')).toBeUndefined();
  });
});

describe('SN -> value[x]', () => {
  const unit = MG_DL;
  it.each<[string, unknown]>([
    ['^182', { valueQuantity: { value: 182, ...MG_DL } }],
    ['=^182', { valueQuantity: { value: 182, ...MG_DL } }],
    ['>^100000', { valueQuantity: { value: 100000, comparator: '>', ...MG_DL } }],
    ['<=^1', { valueQuantity: { value: 1, comparator: '<=', ...MG_DL } }],
    ['^5.5^-^6.5', { valueRange: { low: { value: 5.5, ...MG_DL }, high: { value: 6.5, ...MG_DL } } }],
    ['^^-^6.5', { valueRange: { high: { value: 6.5, ...MG_DL } } }],
    ['^1^:^128', { valueRatio: { numerator: { value: 1, ...MG_DL }, denominator: { value: 128, ...MG_DL } } }],
    ['^1^/^2', { valueRatio: { numerator: { value: 1, ...MG_DL }, denominator: { value: 2, ...MG_DL } } }],
    ['^2^+', { valueString: '2+' }],
    ['<>^5', { valueString: '<>5' }],
    ['>^1^-^5', { valueString: '>1-5' }],
    ['^1^:', { valueString: '1:' }],
  ])('%s', (text, value) => expect(toStructuredNumeric(rep(text), unit, 'OBX-5')).toEqual(value));

  it('an empty SN is no value', () => {
    expect(toStructuredNumeric(rep(''), unit, 'OBX-5')).toBeUndefined();
  });

  it.each(['~^5', '^5^*^6', '^five', '>', '^1^^2'])('%s is not SN', (text) => {
    expect(errorOf(() => toStructuredNumeric(rep(text), unit, 'OBX-5'))).toEqual(INVALID);
  });
});

describe('ED -> Attachment', () => {
  it('keeps base64 and derives the MIME type from table 0191/0291 codes or MIME parts', () => {
    expect(toAttachment(rep('APP^AP^PDF^Base64^JVBERi0x'), 'OBX-5')).toEqual({ contentType: 'application/pdf', data: 'JVBERi0x', size: 6 });
    expect(toAttachment(rep('^image^png^Base64^iVBORw=='), 'OBX-5')).toMatchObject({ contentType: 'image/png' });
    expect(toAttachment(rep('^TEXT^^A^hello'), 'OBX-5')).toEqual({ contentType: 'text/plain', data: 'aGVsbG8=', size: 5 });
    expect(toAttachment(rep('^AP^^Base64^AAAA'), 'OBX-5')).toMatchObject({ contentType: 'application/octet-stream' });
  });

  it('turns hex and plain text into base64', () => {
    expect(toAttachment(rep('^IM^JPEG^Hex^FFD8FFD9'), 'OBX-5')).toEqual({ contentType: 'image/jpeg', data: '/9j/2Q==', size: 4 });
    expect(toAttachment(rep('^TEXT^^^한글'), 'OBX-5')).toEqual({ contentType: 'text/plain', data: Buffer.from('한글').toString('base64'), size: 6 });
  });

  it('has no value without data', () => {
    expect(toAttachment(rep('^AP^PDF^Base64^'), 'OBX-5')).toBeUndefined();
  });

  it.each(['^AP^PDF^Base64^not base64!', '^AP^PDF^Base64^abc', '^IM^JPEG^Hex^FFD', '^AP^PDF^UUENCODE^abcd'])('%s is refused', (text) => {
    expect(errorOf(() => toAttachment(rep(text), 'OBX-5'))).toEqual(INVALID);
  });
});
