/**
 * The clinical and financial resources mapped beside the core ones (mappers/hl7v2/procedures.ts, observations.ts,
 * financial.ts, medication-events.ts, problems.ts, provenance.ts): what each reads, how their ids stay the same
 * across messages, how they refer to each other, and what a field that cannot be read costs. Whole messages are in
 * the fixture families financial/, medication-events/, problems/ and observations/ (test/fixtures/hl7v2).
 */
import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { type MappingResult, type ResourceDraft, defaultHl7MappingOptions, mapHl7Message, mergeDraft, supportedMessageTypes, validateFhirResource } from '../../mappers/index.ts';
import { addMinutes } from '../../mappers/hl7v2/procedures.ts';

/** A segment from field number -> value. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

function message(type: string, segments: string[], { time = '20260401120000', controlId = 'C1', sender = 'HIS|SEOULGEN' } = {}): string {
  return [`MSH|^~\\&|${sender}|||${time}||${type}|${controlId}|P|2.5.1`, ...segments].join('\r');
}

const PID = segment('PID', { 1: '1', 3: '12345^^^SEOULGEN^MR', 5: 'KIM^MINSU', 18: 'ACCT-1^^^SEOULGEN^AN' });
const PV1 = segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 19: 'V100^^^SEOULGEN^VN' });

function map(text: string): MappingResult {
  const result = mapHl7Message(parseHl7(text), defaultHl7MappingOptions);
  for (const draft of result.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
  return result;
}

function drafts(result: MappingResult, resourceType: string): ResourceDraft[] {
  return result.drafts.filter((draft) => draft.resourceType === resourceType);
}

function only(result: MappingResult, resourceType: string): ResourceDraft {
  const found = drafts(result, resourceType);
  expect(found, resourceType).toHaveLength(1);
  return found[0]!;
}

const issuesOf = (result: MappingResult): string[] => (result.issues ?? []).map((issue) => `${issue.code}@${issue.location}`);

describe('the mapping table', () => {
  it('has rows for the accounting, pharmacy event, problem and observation response types', () => {
    const rows = ['BAR^P01', 'BAR^P02', 'BAR^P05', 'BAR^P06', 'BAR^P10', 'BAR^P12', 'DFT^P03', 'DFT^P11', 'RDS^O13', 'RDS^O01', 'RAS^O17', 'RAS^O01', 'PPR^PC1', 'PPR^PC2', 'PPR^PC3', 'ORF^R04'];
    expect(supportedMessageTypes()).toEqual(expect.arrayContaining(rows));
    // RSP^K11 carries whatever its query asked for: it is mapped by its segments.
    expect(supportedMessageTypes()).not.toContain('RSP^K11');
  });
});

describe('Procedure (PR1)', () => {
  const pr1 = (fields: Record<number, string>) => segment('PR1', { 1: '1', 3: '0DTJ4ZZ^Resection of Appendix^I10P', 5: '202603310800', ...fields });

  it('reads a period from PR1-5 and PR1-7 minutes, the performers by their fields, and the visit', () => {
    const result = map(message('ADT^A03', [PID, PV1, pr1({ 6: 'P', 7: '90', 8: '5678^GAS^ANNA', 11: '2345^CUTTER^SAM', 12: '7777^HELPER^HAL' })]));
    const procedure = only(result, 'Procedure');
    expect(procedure['performedPeriod']).toEqual({ start: '2026-03-31T08:00:00+09:00', end: '2026-03-31T09:30:00+09:00' });
    expect(procedure['performedDateTime']).toBeNull();
    expect(procedure['status']).toBe('completed');
    expect(procedure['code']).toEqual({ coding: [{ system: 'http://www.cms.gov/Medicare/Coding/ICD10', code: '0DTJ4ZZ', display: 'Resection of Appendix' }] });
    // The field performers; ROL segments of the PROCEDURE group would be merged beside them (roles.test.ts).
    const performers = (procedure['performer'] as { fields: Array<{ function?: { coding: Array<{ code: string }> } }> }).fields;
    expect(performers.map((p) => p.function?.coding[0]!.code)).toEqual(['88189002', '304292004', undefined]);
    expect(procedure['encounter']).toEqual({ reference: `Encounter/${only(result, 'Encounter').id}` });
  });

  it('is completed only when performed before the message was made; PR1-20 D deletes it', () => {
    const status = (fields: Record<number, string>, time?: string) => only(map(message('ADT^A08', [PID, PV1, pr1(fields)], { time })), 'Procedure')['status'];
    expect(status({})).toBe('completed');
    expect(status({ 5: '202605010800' })).toBe('unknown');
    expect(status({ 20: 'D' })).toBe('entered-in-error');
  });

  it('names one resource across messages, and keeps a second PR1 of the same key apart with an issue', () => {
    const first = only(map(message('ADT^A01', [PID, PV1, pr1({})])), 'Procedure');
    const again = only(map(message('BAR^P12', [PID, PV1, pr1({ 7: '30' })], { controlId: 'C2' })), 'Procedure');
    expect(again.id).toBe(first.id);
    const twice = map(message('ADT^A08', [PID, PV1, pr1({}), pr1({})]));
    expect(new Set(drafts(twice, 'Procedure').map((d) => d.id)).size).toBe(2);
    expect(issuesOf(twice)).toContain('ANCHORLINE_ISSUE_DUPLICATE_KEY@PR1[2]');
  });

  it('costs only its own resource when PR1-3 and PR1-4 are empty', () => {
    const result = map(message('ADT^A08', [PID, PV1, segment('PR1', { 1: '1', 5: '20260331' }), pr1({ 1: '2' })]));
    expect(drafts(result, 'Procedure')).toHaveLength(1);
    expect(issuesOf(result)).toContain('ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@PR1[1]-3');
  });

  it("is the patient's, without the visit, where the row maps none (A28, A31); reported where no builder reads it (RAS)", () => {
    for (const type of ['ADT^A28', 'ADT^A31']) {
      const result = map(message(type, [PID, PV1, pr1({})]));
      expect(only(result, 'Procedure')['encounter'], type).toBeUndefined();
      expect(drafts(result, 'Encounter'), type).toEqual([]);
      expect(issuesOf(result), type).not.toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@PR1');
    }
    // A13 and A16 carry the visit's record, and a result names the visit it was made in: the procedure is the visit's.
    for (const type of ['ADT^A13', 'ORU^R01']) {
      const result = map(message(type, [PID, PV1, pr1({})]));
      expect(only(result, 'Procedure')['encounter'], type).toEqual({ reference: `Encounter/${only(result, 'Encounter').id}` });
    }
    expect(issuesOf(map(message('RAS^O17', [PID, pr1({})])))).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@PR1');
  });

  it('adds minutes to a time in its own offset, across midnight', () => {
    expect(addMinutes('2026-03-31T23:30:00+09:00', 45)).toBe('2026-04-01T00:15:00+09:00');
    expect(addMinutes('2026-03-08T01:30:00-05:00', 60)).toBe('2026-03-08T02:30:00-05:00');
  });
});

describe('Observation outside result reports (OBX)', () => {
  const weight = (fields: Record<number, string> = {}) => segment('OBX', { 1: '1', 2: 'NM', 3: '29463-7^Body weight^LN', 5: '72.5', 6: 'kg', 11: 'F', ...fields });

  it('in ADT: the patient at the visit; the same weight resent in another position is the same Observation, a later one another', () => {
    const result = map(message('ADT^A01', [PID, PV1, weight()]));
    const observation = only(result, 'Observation');
    expect(observation['encounter']).toEqual({ reference: `Encounter/${only(result, 'Encounter').id}` });
    expect(observation['valueQuantity']).toEqual({ value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' });
    const height = segment('OBX', { 1: '1', 2: 'NM', 3: '8302-2^Body height^LN', 5: '170', 6: 'cm', 11: 'F' });
    const resent = map(message('ADT^A08', [PID, PV1, height, weight({ 1: '2' })], { controlId: 'C2' }));
    expect(drafts(resent, 'Observation').map((d) => d.id)).toContain(observation.id);
    const later = only(map(message('ADT^A08', [PID, PV1, weight({ 14: '20260402080000' })], { controlId: 'C3' })), 'Observation');
    expect(later.id).not.toBe(observation.id);
  });

  it('in A28/A31 (about the person): no visit', () => {
    const observation = only(map(message('ADT^A31', [PID, PV1, weight()])), 'Observation');
    expect(observation['encounter']).toBeNull();
  });

  it('in VXU: partOf the Immunization by the order number immunization.ts keys it on', () => {
    const result = map(
      message('VXU^V04', [
        PID,
        segment('ORC', { 1: 'RE', 3: 'IZ-1^KIIS' }),
        segment('RXA', { 1: '0', 2: '1', 3: '20260401', 5: '141^Influenza^CVX', 6: '0.5', 7: 'mL' }),
        segment('OBX', { 1: '1', 2: 'CE', 3: '64994-7^Vaccine funding program eligibility category^LN', 4: '1', 5: 'V01^Not VFC eligible^HL70064', 11: 'F' }),
      ]),
    );
    const immunization = only(result, 'Immunization');
    const observation = only(result, 'Observation');
    expect(observation['partOf']).toEqual([{ type: 'Immunization', identifier: (immunization['identifier'] as unknown[]).at(-1) }]);
  });

  it("in an immunization history: ORC-3 9999 (the guide's refusal and forecast number) names no record; a repeated order number keeps both", () => {
    const rxa = (cvx: string, when: string, status = 'CP') => segment('RXA', { 1: '0', 2: '1', 3: when, 5: cvx, 6: '999', 20: status });
    const vaccineType = (cvx: string) => segment('OBX', { 1: '1', 2: 'CE', 3: '30956-7^Vaccine Type^LN', 4: '1', 5: cvx, 11: 'F' });
    const history = (pid: string, controlId: string) =>
      map(
        message(
          'RSP^K11',
          [
            pid,
            segment('ORC', { 1: 'RE', 3: '65930^DCS' }),
            rxa('94^MMRV^CVX', '20150826'),
            segment('ORC', { 1: 'RE', 3: '65930^DCS' }),
            rxa('94^MMRV^CVX', '20180826'),
            segment('ORC', { 1: 'RE', 3: '9999^DCS' }),
            rxa('998^No vaccine administered^CVX', '20180827', 'NA'),
            vaccineType('08^Hep B^CVX'),
            segment('ORC', { 1: 'RE', 3: '9999^DCS' }),
            rxa('998^No vaccine administered^CVX', '20180827', 'NA'),
            vaccineType('20^DTaP^CVX'),
          ],
          { controlId },
        ),
      );
    const first = history(PID, 'H1');
    const immunizations = drafts(first, 'Immunization');
    expect(immunizations).toHaveLength(4);
    expect(new Set(immunizations.map((d) => d.id)).size).toBe(4);
    // 9999 is not kept as an identifier of the record.
    expect(immunizations.map((d) => JSON.stringify(d['identifier'] ?? null)).filter((text) => text.includes('9999'))).toEqual([]);
    expect(issuesOf(first)).toEqual(expect.arrayContaining(['ANCHORLINE_ISSUE_DUPLICATE_KEY@ORC[2]-3', 'ANCHORLINE_ISSUE_DUPLICATE_KEY@ORC[4]-3']));
    // The forecasts' observations stay apart, each with its own record.
    const forecasts = drafts(first, 'Observation');
    expect(forecasts).toHaveLength(2);
    expect(new Set(forecasts.map((d) => d.id)).size).toBe(2);
    // Another patient's history from the same registry: its 9999 records are its own, not the first patient's.
    const other = history(segment('PID', { 1: '1', 3: '67890^^^SEOULGEN^MR', 5: 'LEE^JIWOO' }), 'H2');
    const ofFirst = new Set(immunizations.map((d) => d.id));
    const forecastIds = (result: MappingResult) => drafts(result, 'Immunization').filter((d) => JSON.stringify(d['vaccineCode']).includes('998')).map((d) => d.id);
    for (const id of forecastIds(other)) expect(ofFirst.has(id)).toBe(false);
    // The same history again names the same records.
    expect(drafts(history(PID, 'H3'), 'Immunization').map((d) => d.id)).toEqual(immunizations.map((d) => d.id));
  });

  it('in ORM: the order links its ask-at-order-entry answers, only those that could be mapped', () => {
    const result = map(
      message('ORM^O01', [
        PID,
        segment('ORC', { 1: 'NW', 2: 'ORD-1^CAREVIEW' }),
        segment('OBR', { 1: '1', 2: 'ORD-1^CAREVIEW', 4: '24331-1^Lipid panel^LN' }),
        segment('OBX', { 1: '1', 2: 'CWE', 3: '49541-6^Fasting status^LN', 5: 'Y^Yes^HL70136', 11: 'O' }),
        segment('OBX', { 1: '2', 2: 'NM', 11: 'O' }),
      ]),
    );
    const observation = only(result, 'Observation');
    expect(only(result, 'ServiceRequest')['supportingInfo']).toEqual([{ reference: `Observation/${observation.id}` }]);
    expect(issuesOf(result)).toContain('ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@OBX[2]-3');
  });
});

describe('orders without an order number', () => {
  it('keeps the order under a key of its own message, with a warning; a resend names the same request', () => {
    const orm = (controlId: string) =>
      message('ORM^O01', [PID, segment('ORC', { 1: 'NW' }), segment('OBR', { 1: '1', 4: '24331-1^Lipid panel^LN' }), segment('ORC', { 1: 'NW' }), segment('OBR', { 1: '2', 4: '2345-7^Glucose^LN' })], { controlId });
    const result = map(orm('C-ORD-1'));
    const requests = drafts(result, 'ServiceRequest');
    expect(requests).toHaveLength(2);
    expect(new Set(requests.map((request) => request.id)).size).toBe(2);
    expect(issuesOf(result)).toEqual(expect.arrayContaining(['ANCHORLINE_ISSUE_MISSING_FIELD@ORC[1]-2', 'ANCHORLINE_ISSUE_MISSING_FIELD@ORC[2]-2']));
    expect(drafts(map(orm('C-ORD-1')), 'ServiceRequest').map((request) => request.id)).toEqual(requests.map((request) => request.id));
    expect(drafts(map(orm('C-ORD-2')), 'ServiceRequest')[0]!.id).not.toBe(requests[0]!.id);
  });
});

describe('a status change that does not say the status', () => {
  it('keeps the order and its stored status; an order first seen so is unknown', () => {
    const orm = (control: string, status = '') =>
      message('ORM^O01', [PID, segment('ORC', { 1: control, 2: 'ORD-7^CAREVIEW', 5: status }), segment('OBR', { 1: '1', 2: 'ORD-7^CAREVIEW', 4: '2345-7^Glucose^LN' })]);
    const placed = mergeDraft(undefined, only(map(orm('NW')), 'ServiceRequest'));
    expect(placed['status']).toBe('active');
    const changed = map(orm('SC'));
    expect(issuesOf(changed)).toContain('ANCHORLINE_ISSUE_MISSING_FIELD@ORC-5');
    expect(mergeDraft(placed, only(changed, 'ServiceRequest'))['status']).toBe('active');
    expect(mergeDraft(undefined, only(changed, 'ServiceRequest'))['status']).toBe('unknown');
  });
});

describe('Account and ChargeItem (BAR, DFT)', () => {
  it('makes the episode of care the account bills for, with the DG1 diagnoses by role and rank; finished with the account', () => {
    const bar = (event: string) =>
      message(`BAR^${event}`, [
        segment('EVN', { 1: event }),
        segment('PID', { 1: '1', 3: 'MRN1^^^SEOULGEN^MR', 5: 'KIM^JISOO', 18: 'ACC-1^^^SEOULGEN' }),
        segment('PV1', { 1: '1', 2: 'I', 19: 'V1' }),
        segment('DG1', { 1: '1', 3: 'I10^Hypertension^I10', 6: 'A', 15: '1' }),
        segment('DG1', { 1: '2', 3: 'E11^Diabetes^I10', 6: 'F', 15: '2' }),
      ]);
    const result = map(bar('P01'));
    const episode = only(result, 'EpisodeOfCare');
    const conditions = drafts(result, 'Condition').map((condition) => `Condition/${condition.id}`);
    expect(episode).toMatchObject({ status: 'active', patient: { reference: `Patient/${only(result, 'Patient').id}` }, account: [{ reference: `Account/${only(result, 'Account').id}` }] });
    expect((episode['diagnosis'] as Array<{ condition: { reference: string }; rank: number }>).map((d) => [d.condition.reference, d.rank])).toEqual([[conditions[0], 1], [conditions[1], 2]]);
    expect(only(map(bar('P06')), 'EpisodeOfCare')).toMatchObject({ id: episode.id, status: 'finished' });
    expect(validateFhirResource(mergeDraft(undefined, episode))).toEqual([]);
  });

  const ft1 = (fields: Record<number, string>) => segment('FT1', { 1: '1', 2: 'TX-1', 4: '20260401', 6: 'CG', 7: '99213^Office visit^C4', 10: '1', ...fields });

  it('charges the account and the visit; a credit is no charge item', () => {
    const result = map(message('DFT^P03', [PID, PV1, ft1({}), ft1({ 1: '2', 2: 'TX-2', 6: 'CD' })]));
    const account = only(result, 'Account');
    expect(account['status']).toBe('active');
    const charge = only(result, 'ChargeItem');
    expect(charge['account']).toEqual([{ reference: `Account/${account.id}` }]);
    expect(charge['context']).toEqual({ reference: `Encounter/${only(result, 'Encounter').id}` });
    expect(charge['identifier']).toEqual([{ system: 'urn:anchorline:authority:SEOULGEN', value: 'TX-1' }]);
    expect(issuesOf(result)).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@FT1[2]-6');
  });

  it('closes the account on BAR^P06 and keeps its id: PID-18, else the visit number', () => {
    const opened = only(map(message('BAR^P01', [PID, PV1])), 'Account');
    const closed = only(map(message('BAR^P06', [PID, PV1], { controlId: 'C2' })), 'Account');
    expect(closed.id).toBe(opened.id);
    expect(closed['status']).toBe('inactive');
    const byVisit = only(map(message('BAR^P05', [segment('PID', { 1: '1', 3: '12345^^^SEOULGEN^MR' }), PV1])), 'Account');
    expect(byVisit['identifier']).toEqual([expect.objectContaining({ value: 'V100' })]);
  });

  it('DFT and the segments of unknown types: FT1 is read wherever its builder runs, and reported where it does not', () => {
    expect(drafts(map(message('ZFT^Z01', [PID, ft1({})])), 'ChargeItem')).toHaveLength(1);
    expect(issuesOf(map(message('RAS^O17', [PID, segment('ORC', { 1: 'RE', 2: 'O1^X' }), ft1({})])))).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@FT1');
  });

  it("an order's, the visit's or the person's FT1 is a charge of the patient, its account named by identifier (ORM, ADT, A31)", () => {
    const order = map(message('ORM^O01', [PID, PV1, segment('ORC', { 1: 'NW', 2: 'O1^X' }), segment('OBR', { 1: '1', 2: 'O1^X', 4: 'X^Y^L' }), ft1({})]));
    const charge = only(order, 'ChargeItem');
    // No Account in the message: a logical reference, which names it without requiring the resource.
    expect(charge['account']).toEqual([{ type: 'Account', identifier: expect.objectContaining({ value: 'ACCT-1' }) }]);
    // The order's visit, which its PV1 names; a charge is a complete draft: an order without a visit says null.
    expect(charge['context']).toEqual({ reference: `Encounter/${only(order, 'Encounter').id}` });
    const visitless = map(message('ORM^O01', [PID, segment('ORC', { 1: 'NW', 2: 'O1^X' }), segment('OBR', { 1: '1', 2: 'O1^X', 4: 'X^Y^L' }), ft1({})]));
    expect(only(visitless, 'ChargeItem')['context']).toBeNull();
    const admit = map(message('ADT^A03', [PID, PV1, ft1({})]));
    expect(only(admit, 'ChargeItem')['context']).toEqual({ reference: `Encounter/${only(admit, 'Encounter').id}` });
    expect(only(admit, 'ChargeItem').id).toBe(charge.id);
    expect(only(map(message('ADT^A31', [PID, PV1, ft1({})])), 'ChargeItem')['context']).toBeNull();
    for (const result of [order, admit]) expect(issuesOf(result)).not.toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@FT1');
  });
});

describe('the visit of results, orders, vaccinations and documents (PV1 in ORU, ORF, ORM, OML, RDE, OMP, VXU, MDM)', () => {
  const ORC = segment('ORC', { 1: 'NW', 2: 'O1^EMR' });
  const OBR = segment('OBR', { 1: '1', 2: 'O1^EMR', 3: 'F1^LIS', 4: '2345-7^Glucose^LN', 7: '20260401080000', 25: 'F' });
  const OBX = segment('OBX', { 1: '1', 2: 'NM', 3: '2345-7^Glucose^LN', 5: '95', 6: 'mg/dL', 11: 'F' });
  const visitOf = (result: MappingResult): { reference: string } => ({ reference: `Encounter/${only(result, 'Encounter').id}` });

  it('a result names the visit as the report and each observation encounter, and maps the visit as it stands', () => {
    for (const type of ['ORU^R01', 'ORF^R04']) {
      const result = map(message(type, [PID, PV1, ORC, OBR, OBX]));
      expect(only(result, 'DiagnosticReport')['encounter'], type).toEqual(visitOf(result));
      expect(only(result, 'Observation')['encounter'], type).toEqual(visitOf(result));
      // The result restates the visit and changes nothing of its state: no status (a visit first seen so is unknown).
      expect(only(result, 'Encounter')['status'], type).toBeUndefined();
      expect(mergeDraft(undefined, only(result, 'Encounter'))['status'], type).toBe('unknown');
    }
    // Without a PV1 (or a visit number), no Encounter and none named: a report is a complete draft, so null.
    const bare = map(message('ORU^R01', [PID, ORC, OBR, OBX]));
    expect(drafts(bare, 'Encounter')).toEqual([]);
    expect(only(bare, 'DiagnosticReport')['encounter']).toBeNull();
    expect(only(bare, 'Observation')['encounter']).toBeNull();
  });

  it("an order's request names the visit; an order message without one leaves the stored visit as it is", () => {
    for (const type of ['ORM^O01', 'OML^O21']) {
      const result = map(message(type, [PID, PV1, ORC, segment('OBR', { 1: '1', 2: 'O1^EMR', 4: '2345-7^Glucose^LN' })]));
      expect(only(result, 'ServiceRequest')['encounter'], type).toEqual(visitOf(result));
    }
    const rde = map(message('RDE^O11', [PID, PV1, ORC, segment('RXE', { 2: '00093-7424-01^Amoxicillin^NDC' })]));
    expect(only(rde, 'MedicationRequest')['encounter']).toEqual(visitOf(rde));
    const omp = map(message('OMP^O09', [PID, PV1, ORC, segment('RXO', { 1: '00093-7424-01^Amoxicillin^NDC' })]));
    expect(only(omp, 'MedicationRequest')['encounter']).toEqual(visitOf(omp));
    // Update drafts: undefined keeps what is stored.
    const cancel = map(message('ORM^O01', [PID, segment('ORC', { 1: 'CA', 2: 'O1^EMR' }), segment('OBR', { 1: '1', 2: 'O1^EMR', 4: '2345-7^Glucose^LN' })]));
    expect(only(cancel, 'ServiceRequest')['encounter']).toBeUndefined();
  });

  it('their patient group is mapped as ADT maps it: NK1, AL1, DG1 of the visit, IN1 with IN2', () => {
    const NK1 = segment('NK1', { 1: '1', 2: 'KIM^YUNA', 3: 'MTH^Mother^HL70063' });
    const AL1 = segment('AL1', { 1: '1', 2: 'DA', 3: '70618^Penicillin^RXNORM', 4: 'SV' });
    const DG1 = segment('DG1', { 1: '1', 3: 'E11.9^Type 2 diabetes mellitus^I10', 6: 'W' });
    const IN1 = segment('IN1', { 1: '1', 2: 'NHIS^National Health Insurance^L', 3: 'NHIS^^^KR', 4: 'National Health Insurance Service', 36: 'POL-1' });
    const IN2 = segment('IN2', { 1: '1' });
    const order = map(message('ORM^O01', [PID, NK1, PV1, AL1, DG1, IN1, IN2, ORC, segment('OBR', { 1: '1', 2: 'O1^EMR', 4: '2345-7^Glucose^LN' })]));
    for (const type of ['RelatedPerson', 'AllergyIntolerance', 'Condition', 'Coverage']) expect(drafts(order, type), type).toHaveLength(1);
    expect(only(order, 'Condition')['encounter']).toEqual(visitOf(order));
    expect(issuesOf(order).filter((issue) => issue.includes('SEGMENT_NOT_MAPPED'))).toEqual([]);
    const vaccination = map(message('VXU^V04', [PID, NK1, segment('ORC', { 1: 'RE', 3: 'IZ-1^REG' }), segment('RXA', { 1: '0', 2: '1', 3: '20260401', 5: '141^Influenza^CVX' })]));
    expect(only(vaccination, 'RelatedPerson')['relationship']).toEqual([expect.objectContaining({ coding: expect.arrayContaining([expect.objectContaining({ code: 'MTH' })]) })]);
    const report = map(message('ORU^R01', [PID, NK1, PV1, ORC, OBR, OBX]));
    expect(drafts(report, 'RelatedPerson')).toHaveLength(1);
  });

  it("an order's own DG1 are the request's reasonReference, the Conditions the patient group makes of them", () => {
    const dg1 = (code: string) => segment('DG1', { 1: '1', 3: code, 6: 'W' });
    const result = map(message('ORM^O01', [PID, PV1, ORC, segment('OBR', { 1: '1', 2: 'O1^EMR', 4: '2345-7^Glucose^LN' }), dg1('E11.9^Type 2 diabetes mellitus^I10'), dg1('^^I10')]));
    const condition = only(result, 'Condition');
    expect(only(result, 'ServiceRequest')['reasonReference']).toEqual([{ reference: `Condition/${condition.id}` }]);
    // The DG1 without a code is the Condition builder's issue, once.
    expect(issuesOf(result).filter((issue) => issue.includes('DG1'))).toEqual(['ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@DG1[2]-3']);
  });

  it("a laboratory order's specimens (OML^O21 SPM) are Specimens the request names, one per specimen id, the result's the same", () => {
    const spm = segment('SPM', { 1: '1', 2: 'SP-1&LAB', 4: 'SER^Serum^HL70487', 17: '20260401073000' });
    const obr = (placer: string, code: string) => segment('OBR', { 1: '1', 2: placer, 4: code });
    const order = map(message('OML^O21', [PID, PV1, segment('ORC', { 1: 'NW', 2: 'O1^EMR' }), obr('O1^EMR', '2345-7^Glucose^LN'), spm, segment('ORC', { 1: 'NW', 2: 'O2^EMR' }), obr('O2^EMR', '2160-0^Creatinine^LN'), spm]));
    const specimen = only(order, 'Specimen');
    expect(specimen['collection']).toEqual(expect.objectContaining({ collectedDateTime: '2026-04-01T07:30:00+09:00' }));
    for (const request of drafts(order, 'ServiceRequest')) expect(request['specimen']).toEqual([{ reference: `Specimen/${specimen.id}` }]);
    const report = map(message('ORU^R01', [PID, PV1, ORC, OBR, spm, OBX], { controlId: 'C2' }));
    expect(only(report, 'Specimen').id).toBe(specimen.id);
    // An order without SPM leaves the request's stored specimens as they are.
    expect(only(map(message('OML^O21', [PID, segment('ORC', { 1: 'SC', 2: 'O1^EMR', 5: 'IP' }), obr('O1^EMR', '2345-7^Glucose^LN')])), 'ServiceRequest')['specimen']).toBeUndefined();
  });

  it('PV2: the admit reason, the length of stay and the visit priority; "" removes one; reported where no visit is mapped', () => {
    const pv2 = (fields: Record<number, string>) => segment('PV2', { 3: 'R07.9^Chest pain^I10', 11: '3', 25: '1', ...fields });
    const encounter = only(map(message('ADT^A01', [segment('EVN', { 2: '20260401120000' }), PID, PV1, pv2({})])), 'Encounter');
    expect(encounter['reasonCode']).toEqual([{ coding: [expect.objectContaining({ code: 'R07.9', display: 'Chest pain' })] }]);
    expect(encounter['length']).toEqual({ value: 3, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' });
    expect(encounter['priority']).toEqual({ coding: [expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActPriority', code: 'EM' }), expect.objectContaining({ code: '1' })] });
    const cleared = only(map(message('ADT^A08', [segment('EVN', { 2: '20260401120000' }), PID, PV1, pv2({ 3: '""', 25: 'X' })])), 'Encounter');
    expect(cleared['reasonCode']).toBeNull();
    expect(cleared['priority']).toEqual({ coding: [expect.objectContaining({ code: 'X' })] });
    // Without PV2 nothing of it is touched.
    expect(only(map(message('ADT^A08', [segment('EVN', { 2: '20260401120000' }), PID, PV1])), 'Encounter')).not.toHaveProperty('reasonCode');
    expect(issuesOf(map(message('ADT^A31', [PID, PV1, pv2({})])))).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@PV2');
  });

  it("a vaccination and a document name the visit", () => {
    const vxu = map(message('VXU^V04', [PID, PV1, segment('ORC', { 1: 'RE', 3: 'IZ-1^REG' }), segment('RXA', { 1: '0', 2: '1', 3: '20260401', 5: '141^Influenza^CVX', 6: '0.5', 7: 'mL' })]));
    expect(only(vxu, 'Immunization')['encounter']).toEqual(visitOf(vxu));
    const mdm = map(message('MDM^T02', [PID, PV1, segment('TXA', { 1: '1', 2: 'DS', 3: 'TX', 6: '20260401120000', 12: 'DOC-1^EMR', 17: 'AU' }), segment('OBX', { 1: '1', 2: 'TX', 3: 'DS^Discharge summary^L', 5: 'Discharged home.', 11: 'F' })]));
    expect(only(mdm, 'DocumentReference')['context']).toEqual({ encounter: [visitOf(mdm)] });
    const noVisit = map(message('MDM^T02', [PID, segment('TXA', { 1: '1', 2: 'DS', 3: 'TX', 6: '20260401120000', 12: 'DOC-1^EMR', 17: 'AU' }), segment('OBX', { 1: '1', 2: 'TX', 3: 'DS^Discharge summary^L', 5: 'Discharged home.', 11: 'F' })]));
    expect(only(noVisit, 'DocumentReference')['context']).toBeNull();
  });
});

describe('pharmacy orders from the placer (OMP^O09, and ORC/RXO in ORM^O01)', () => {
  const rxo = (fields: Record<number, string>) => segment('RXO', { 1: '00093-7424-01^Amoxicillin 500 MG Cap^NDC', 2: '1', 4: 'CAP^Capsule^UCUM', 11: '30', 12: 'CAP^Capsule^UCUM', 13: '2', ...fields });
  const orc = (fields: Record<number, string>) => segment('ORC', { 1: 'NW', 2: 'RX-1001^EMR', 9: '20260401091500', 12: '1234^PRESCRIBER^PAT', ...fields });

  it('OMP^O09: a MedicationRequest from RXO-1/2/4, RXO-11/12/13, RXR, TQ1 and ORC-12, intent original-order', () => {
    const result = map(message('OMP^O09', [PID, orc({}), segment('TQ1', { 1: '1', 3: 'TID', 7: '20260401', 9: 'S' }), rxo({ 7: '^Take with food' }), segment('RXR', { 1: 'PO^Oral^HL70162' })]));
    const request = only(result, 'MedicationRequest');
    expect(request).toMatchObject({
      status: 'active',
      intent: 'original-order',
      priority: 'stat',
      medicationCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: '00093-7424-01', display: 'Amoxicillin 500 MG Cap' }] },
      authoredOn: '2026-04-01T09:15:00+09:00',
      dispenseRequest: { numberOfRepeatsAllowed: 2, quantity: { value: 30, code: 'CAP' } },
    });
    const [dosage] = request['dosageInstruction'] as Array<Record<string, unknown>>;
    expect(dosage).toMatchObject({ text: 'Take with food', doseAndRate: [{ doseQuantity: { value: 1, code: 'CAP' } }], route: { coding: [expect.objectContaining({ code: 'PO' })] } });
    expect((dosage!['timing'] as { code: { coding: Array<{ code: string }> } }).code.coding[0]!.code).toBe('TID');
    expect(request['requester']).toEqual(expect.objectContaining({ reference: expect.stringMatching(/^Practitioner\//) }));
    expect(issuesOf(result).filter((issue) => !issue.startsWith('ANCHORLINE_ISSUE_AUTHORITY_FALLBACK'))).toEqual([]);
    expect(supportedMessageTypes()).toContain('OMP^O09');
  });

  it("the pharmacy's RDE for the same placer order updates the request the OMP made", () => {
    const omp = only(map(message('OMP^O09', [PID, orc({}), rxo({})])), 'MedicationRequest');
    const rde = only(map(message('RDE^O11', [PID, orc({ 1: 'OK' }), segment('RXE', { 2: '00093-7424-01^Amoxicillin 500 MG Cap^NDC' })], { controlId: 'C2' })), 'MedicationRequest');
    expect(rde.id).toBe(omp.id);
    expect(rde['intent']).toBe('order');
  });

  it('ORM^O01 with an RXO after its ORC: a MedicationRequest, its TQ in ORC-7 and the prescriber in RXO-14 where ORC-12 is empty', () => {
    const result = map(message('ORM^O01', [PID, orc({ 7: '^BID^^20260402^^R', 12: '' }), rxo({ 14: '5678^DOCTOR^DORA' })]));
    const request = only(result, 'MedicationRequest');
    expect(request['priority']).toBe('routine');
    const [dosage] = request['dosageInstruction'] as Array<Record<string, unknown>>;
    expect(dosage).toMatchObject({ timing: { code: { coding: expect.arrayContaining([expect.objectContaining({ code: 'BID' })]) }, repeat: { boundsPeriod: { start: '2026-04-02' } } } });
    expect(request['requester']).toEqual(expect.objectContaining({ reference: expect.stringMatching(/^Practitioner\//) }));
    expect(drafts(result, 'ServiceRequest')).toEqual([]);
    expect(issuesOf(result).filter((issue) => /OBR|RXO|ORC/.test(issue))).toEqual([]);
    // As ORC-12 and OBR-16 do for a service order: a `""` with nobody named removes the stored prescriber.
    expect(only(map(message('ORM^O01', [PID, orc({ 12: '' }), rxo({ 14: '""' })])), 'MedicationRequest')['requester']).toBeNull();
  });

  it('ORM^O01 carrying a service order and a pharmacy order: one ServiceRequest and one MedicationRequest, no issue about either', () => {
    const result = map(message('ORM^O01', [PID, orc({ 2: 'LAB-1^EMR' }), segment('OBR', { 1: '1', 2: 'LAB-1^EMR', 4: '2345-7^Glucose^LN' }), orc({}), rxo({})]));
    expect(drafts(result, 'ServiceRequest')).toHaveLength(1);
    expect(drafts(result, 'MedicationRequest')).toHaveLength(1);
    expect(issuesOf(result).filter((issue) => /OBR|RXO|ORC/.test(issue))).toEqual([]);
    // A service order alone builds no MedicationRequest and says nothing of RXO.
    const services = map(message('ORM^O01', [PID, orc({ 2: 'LAB-1^EMR' }), segment('OBR', { 1: '1', 2: 'LAB-1^EMR', 4: '2345-7^Glucose^LN' })]));
    expect(drafts(services, 'MedicationRequest')).toEqual([]);
    expect(issuesOf(services).filter((issue) => /OBR|RXO|ORC/.test(issue))).toEqual([]);
  });

  it('an RXO without a give code costs its own order, with the issue at RXO-1; an ORC with neither detail is still reported', () => {
    const result = map(message('OMP^O09', [PID, orc({}), rxo({ 1: '' }), orc({ 2: 'RX-1002^EMR' }), rxo({})]));
    expect(drafts(result, 'MedicationRequest')).toHaveLength(1);
    expect(issuesOf(result)).toContain('ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@RXO-1');
    const bare = map(message('ORM^O01', [PID, orc({})]));
    expect(issuesOf(bare)).toContain('ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@OBR');
  });

  it('an RXO in a message type the table does not list is mapped by its segments, unless an RXE encodes the order', () => {
    expect(only(map(message('OMP^O99', [PID, orc({}), rxo({})])), 'MedicationRequest')['intent']).toBe('original-order');
    const encoded = map(message('RDE^O99', [PID, orc({}), rxo({}), segment('RXE', { 2: '00093-7424-01^Amoxicillin 500 MG Cap^NDC' })]));
    expect(only(encoded, 'MedicationRequest')['intent']).toBe('order');
  });
});

describe('one unreadable NK1, AL1, IN1 or DG1 costs itself', () => {
  it("keeps the message's other contacts, allergies, plans and diagnoses, with the issue at the segment's position", () => {
    const result = map(message('ADT^A01', [
      segment('EVN', { 1: 'A01', 2: '20260401120000' }),
      PID,
      PV1,
      segment('NK1', { 1: '1', 2: 'KIM^YUNA', 3: 'MTH^Mother^HL70063' }),
      segment('NK1', { 3: 'FTH^Father^HL70063' }),
      segment('AL1', { 1: '1', 2: 'DA', 3: '70618^Penicillin^RXNORM' }),
      segment('AL1', { 1: '2', 2: 'DA' }),
      segment('DG1', { 1: '1', 4: '' }),
      segment('DG1', { 1: '2', 3: 'E11.9^Type 2 diabetes mellitus^I10' }),
      segment('IN1', { 1: '1', 2: 'PLAN1', 3: 'NHIS^^^KR', 4: 'National Health Insurance Service' }),
      segment('IN1', { 1: '2', 2: 'PLAN2' }),
    ]));
    for (const type of ['RelatedPerson', 'AllergyIntolerance', 'Condition', 'Coverage']) expect(drafts(result, type), type).toHaveLength(1);
    expect(issuesOf(result)).toEqual(expect.arrayContaining([
      'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@NK1[2]-2',
      'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@AL1[2]-3',
      'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@DG1[1]-3',
      'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@IN1[2]-3',
    ]));
  });
});

describe('MedicationDispense and MedicationAdministration (RDS, RAS)', () => {
  const orc = segment('ORC', { 1: 'RE', 2: 'RX-1^PHARM' });

  it('a dispense names the MedicationRequest its order made (RDE^O11 with the same ORC)', () => {
    const rde = map(message('RDE^O11', [PID, segment('ORC', { 1: 'NW', 2: 'RX-1^PHARM' }), segment('RXE', { 2: '0006-0740-31^Simvastatin^NDC' })]));
    const rds = map(message('RDS^O13', [PID, orc, segment('RXD', { 1: '1', 2: '0006-0740-31^Simvastatin^NDC', 3: '20260401093000', 4: '30', 5: 'TAB' }), segment('OBX', { 1: '1', 2: 'NM', 3: '29463-7^Body weight^LN', 5: '70', 6: 'kg', 11: 'F' })], { controlId: 'C2' }));
    const dispense = only(rds, 'MedicationDispense');
    expect(dispense['authorizingPrescription']).toEqual([expect.objectContaining({ reference: `MedicationRequest/${only(rde, 'MedicationRequest').id}` })]);
    expect(dispense['whenHandedOver']).toBe('2026-04-01T09:30:00+09:00');
    expect(only(rds, 'Observation')['partOf']).toEqual([{ reference: `MedicationDispense/${dispense.id}` }]);
  });

  it('an administration: RXA-20 by the IG table, RXA-21 D deleted, an unknown code read as unknown with an issue', () => {
    const status = (fields: Record<number, string>) => {
      const result = map(message('RAS^O17', [PID, orc, segment('RXA', { 1: '0', 2: '1', 3: '20260401080000', 5: '313782^Acetaminophen^RXNORM', 6: '500', 7: 'mg', ...fields })]));
      return [only(result, 'MedicationAdministration')['status'], issuesOf(result).filter((issue) => issue.includes('RXA-20'))];
    };
    expect(status({})).toEqual(['completed', []]);
    expect(status({ 20: 'RE', 18: '00^Parental decision^NIP002' })).toEqual(['not-done', []]);
    expect(status({ 20: 'PA' })).toEqual(['completed', []]);
    expect(status({ 21: 'D' })).toEqual(['entered-in-error', []]);
    expect(status({ 20: 'ZZ' })).toEqual(['unknown', ['ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE@RXA-20']]);
  });

  it('two administrations of one order with the same counters are both kept, the later under its position', () => {
    const rxa = segment('RXA', { 1: '0', 2: '1', 3: '20260401080000', 5: '313782^Acetaminophen^RXNORM', 6: '500', 7: 'mg' });
    const result = map(message('RAS^O17', [PID, orc, rxa, rxa]));
    expect(new Set(drafts(result, 'MedicationAdministration').map((d) => d.id)).size).toBe(2);
    expect(issuesOf(result)).toContain('ANCHORLINE_ISSUE_DUPLICATE_KEY@RXA[2]');
  });
});

describe('Condition from PRB (PPR)', () => {
  const prb = (fields: Record<number, string>) => segment('PRB', { 1: 'AD', 2: '20260401', 3: 'I10^Essential hypertension^I10', 4: 'PRB-77', ...fields });

  it('PC1, PC2 and PC3 about one problem instance address one Condition; PC3 makes it entered in error', () => {
    const added = only(map(message('PPR^PC1', [PID, prb({ 14: 'A^Active', 16: '20250101' })])), 'Condition');
    expect(added['clinicalStatus']).toEqual({ coding: [expect.objectContaining({ code: 'active' })] });
    expect(added['category']).toEqual([{ coding: [expect.objectContaining({ code: 'problem-list-item' })] }]);
    expect(added['onsetDateTime']).toBe('2025-01-01');
    const resolved = only(map(message('PPR^PC2', [PID, prb({ 1: 'UP', 9: '20260301' })], { controlId: 'C2' })), 'Condition');
    expect(resolved.id).toBe(added.id);
    expect(resolved['clinicalStatus']).toEqual({ coding: [expect.objectContaining({ code: 'resolved' })] });
    expect(resolved['abatementDateTime']).toBe('2026-03-01');
    const deleted = only(map(message('PPR^PC3', [PID, prb({ 1: 'DE', 14: 'Deleted', 9: '20260301' })], { controlId: 'C3' })), 'Condition');
    expect(deleted.id).toBe(added.id);
    expect(deleted['verificationStatus']).toEqual({ coding: [expect.objectContaining({ code: 'entered-in-error' })] });
    expect(deleted['clinicalStatus']).toBeNull();
    expect(deleted['abatementDateTime']).toBeNull();
  });

  it('a status it cannot read is an information issue and leaves the element as stored', () => {
    const result = map(message('PPR^PC2', [PID, prb({ 13: 'MAYBE' })]));
    expect(only(result, 'Condition')).not.toHaveProperty('verificationStatus');
    expect(result.issues).toContainEqual(expect.objectContaining({ severity: 'information', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'PRB-13', value: 'MAYBE' }));
  });
});

describe('Provenance', () => {
  it('one per message: every draft as a target, MSH-4 as author, MSH-7 as recorded, the control id as the source', () => {
    const result = map(message('ADT^A01', [PID, PV1], { controlId: 'CTRL-9', sender: 'HIS|SEOULGEN^2.16.410.100001^ISO' }));
    const provenance = result.drafts.at(-1)!;
    expect(provenance.resourceType).toBe('Provenance');
    expect(provenance['target']).toEqual(result.drafts.slice(0, -1).map((d) => ({ reference: `${d.resourceType}/${d.id}` })));
    expect(provenance['recorded']).toBe('2026-04-01T12:00:00+09:00');
    // The author is the MSH-4 Organization resource the message drafts (beside the patient identifier's assigner), by
    // its literal reference.
    const organization = drafts(result, 'Organization').find((draft) => JSON.stringify(draft['identifier']).includes('2.16.410.100001'))!;
    expect(organization['identifier']).toContainEqual({ system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.16.410.100001' });
    expect(provenance['agent']).toEqual([expect.objectContaining({ who: { reference: `Organization/${organization.id}`, type: 'Organization', display: 'SEOULGEN' } })]);
    expect(provenance['entity']).toEqual([{ role: 'source', what: expect.objectContaining({ identifier: expect.objectContaining({ value: 'CTRL-9' }) }) }]);
    // The same message again (a resend) addresses the same Provenance; another control id another one.
    expect(map(message('ADT^A01', [PID, PV1], { controlId: 'CTRL-9', sender: 'HIS|SEOULGEN^2.16.410.100001^ISO' })).drafts.at(-1)!.id).toBe(provenance.id);
    expect(map(message('ADT^A01', [PID, PV1], { controlId: 'CTRL-10', sender: 'HIS|SEOULGEN^2.16.410.100001^ISO' })).drafts.at(-1)!.id).not.toBe(provenance.id);
  });

  it('names the raw message by its SHA-256 when the ingest job passes it', () => {
    const sha = 'ab'.repeat(32);
    const provenance = only(mapHl7Message(parseHl7(message('ADT^A01', [PID, PV1], { controlId: 'CTRL-11' })), { ...defaultHl7MappingOptions, rawSha256: sha }), 'Provenance');
    expect(provenance['entity']).toContainEqual({ role: 'source', what: { identifier: { system: 'urn:anchorline:raw-sha256', value: sha }, display: 'SHA-256 of the message as received' } });
  });

  it('names the sending application as a Device when MSH-4 is empty', () => {
    const provenance = only(map(message('ADT^A04', [PID], { sender: 'LABSYS|' })), 'Provenance');
    expect((provenance['agent'] as Array<{ who: unknown }>)[0]!.who).toEqual({ type: 'Device', display: 'LABSYS' });
  });

  it('is not made without a time of day in MSH-7: a date alone is valid HL7 and no issue, an empty MSH-7 is one', () => {
    const dateOnly = map(message('ADT^A04', [PID], { time: '20260401' }));
    expect(drafts(dateOnly, 'Provenance')).toEqual([]);
    expect(dateOnly.issues).toBeUndefined();
    const empty = map(message('ADT^A04', [PID], { time: '' }));
    expect(drafts(empty, 'Provenance')).toEqual([]);
    expect(issuesOf(empty)).toContain('ANCHORLINE_ISSUE_MISSING_FIELD@MSH-7');
  });
});

describe('a message naming several patients', () => {
  it("maps the first of a query response's candidates and says the others are left in the raw message", () => {
    const candidates = map(
      message('RSP^K22', [
        segment('PID', { 1: '1', 3: '12345^^^SEOULGEN^MR', 5: 'KIM^MINSU' }),
        segment('PID', { 1: '2', 3: '67890^^^SEOULGEN^MR', 5: 'KIM^MINJI' }),
        segment('PID', { 1: '3', 3: '13579^^^SEOULGEN^MR', 5: 'KIM^MINHO' }),
      ]),
    );
    expect(drafts(candidates, 'Patient')).toHaveLength(1);
    expect(issuesOf(candidates).filter((issue) => issue.startsWith('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@PID'))).toEqual([
      'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@PID[2]',
      'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@PID[3]',
    ]);
    // A swap names its two patients on purpose: both are mapped, with no such issue.
    const swap = map(message('ADT^A17', [segment('PID', { 1: '1', 3: '12345^^^SEOULGEN^MR', 5: 'KIM^MINSU' }), segment('PID', { 1: '2', 3: '67890^^^SEOULGEN^MR', 5: 'KIM^MINJI' })]));
    expect(drafts(swap, 'Patient')).toHaveLength(2);
    expect(issuesOf(swap).filter((issue) => issue.includes('@PID['))).toEqual([]);
  });
});
