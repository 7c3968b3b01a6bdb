/** Shaping resources by `_elements` and `_summary` (api/fhir-shape.ts), and reading the result parameters. */
import { describe, expect, it } from 'vitest';
import { parseResultShape, shapeResource, SUBSETTED } from '../../api/fhir-shape.ts';
import { isAnchorlineError } from '../../errors/index.ts';

const observation = {
  resourceType: 'Observation',
  id: 'o1',
  meta: { versionId: '2', lastUpdated: '2026-12-01T00:00:00Z' },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">118 mg/dL</div>' },
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: '2026-12-01T09:30:00+09:00',
  _effectiveDateTime: { extension: [{ url: 'urn:x', valueString: 'x' }] },
  valueQuantity: { value: 118, unit: 'mg/dL' },
  interpretation: [{ coding: [{ code: 'H' }] }],
  note: [{ text: 'fasting' }],
};

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return isAnchorlineError(error) ? error.code : 'thrown';
  }
}

describe('shapeResource', () => {
  it('keeps the elements asked for, choice elements and primitive extensions by their element, and what R4 requires', () => {
    const shaped = shapeResource(observation, { elements: ['effective', 'value'] });
    // status and code are required (min 1) in R4 Observation.
    expect(Object.keys(shaped)).toEqual(['resourceType', 'id', 'meta', 'status', 'code', 'effectiveDateTime', '_effectiveDateTime', 'valueQuantity']);
    expect(shaped.meta).toEqual({ ...observation.meta, tag: [SUBSETTED] });
    expect(observation.meta).not.toHaveProperty('tag');
  });

  it('summary true keeps the summary elements; data leaves out the narrative; text keeps it with what is required', () => {
    expect(Object.keys(shapeResource(observation, { summary: 'true' }))).toEqual(['resourceType', 'id', 'meta', 'status', 'code', 'subject', 'effectiveDateTime', '_effectiveDateTime', 'valueQuantity']);
    expect(Object.keys(shapeResource(observation, { summary: 'data' }))).not.toContain('text');
    expect(Object.keys(shapeResource(observation, { summary: 'text' }))).toEqual(['resourceType', 'id', 'meta', 'text', 'status', 'code']);
    expect(shapeResource(observation, { summary: 'false' })).toBe(observation);
    expect(shapeResource(observation, {})).toBe(observation);
  });

  it('tags a resource SUBSETTED once', () => {
    const once = shapeResource(observation, { summary: 'true' });
    expect((shapeResource(once, { summary: 'true' }).meta as { tag: unknown[] }).tag).toHaveLength(1);
  });
});

describe('parseResultShape', () => {
  it('reads what a search may ask, and refuses what cannot be honoured', () => {
    expect(parseResultShape({ _summary: 'count', _total: 'none', _sort: '-_lastUpdated,_id' }, 'search')).toEqual({ summary: 'count', total: 'none', sort: [{ key: 'lastUpdated', descending: true }, { key: 'id', descending: false }] });
    for (const query of [{ _summary: 'everything' }, { _total: 'some' }, { _sort: 'birthdate' }, { _sort: '_id,-_id' }, { _elements: 'a b' }, { _summary: 'true', _elements: 'status' }, { _summary: ['true', 'data'] }]) {
      expect(codeOf(() => parseResultShape(query, 'search')), JSON.stringify(query)).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    }
    expect(codeOf(() => parseResultShape({ _summary: 'count' }, 'read'))).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    expect(codeOf(() => parseResultShape({ _sort: '_id' }, 'read'))).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
  });
});
