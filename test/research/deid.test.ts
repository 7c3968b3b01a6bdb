import { describe, expect, it } from 'vitest';
import { DEFAULT_DEID_CONFIG, deidentifyResource } from '../../research/index.ts';

describe('deidentifyResource', () => {
  it('runs', () => {
    const out = deidentifyResource({ resourceType: 'Patient', id: 'p1' }, DEFAULT_DEID_CONFIG, { projectSecret: new Uint8Array(32) });
    expect(out.resource?.id).toMatch(/^[0-9a-f]{32}$/);
  });
});
