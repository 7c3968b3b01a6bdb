/**
 * Section converters (mappers/cda/sections/) as the conversion runs them: a section is claimed by any of its
 * templateIds, else by its LOINC code; the converter's resources become drafts and the entries of the Composition's
 * section, whose title and narrative @medplum/ccda still writes, while it makes nothing of the section's entries; ids
 * are deterministic; what a converter leaves out, or a converter failing, is reported and costs that section only.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { isAnchorlineError } from '../../errors/index.ts';
import { deterministicId, mergeDraft, validateFhirResource } from '../../mappers/index.ts';
import { SECTION_CONVERTERS } from '../../mappers/cda/sections/index.ts';
import type { SectionConverter } from '../../mappers/cda/section-types.ts';

import { convertCorpusDocument, problemsOf } from '../support/cda-section-documents.ts';
import { codeOf, convert, expectValid, mutations, ofType, section, sectionFixture } from './sections-support.ts';

const CORPUS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus', 'ccda');

describe('section converters in the conversion', () => {
  it('make drafts that the Composition section lists as its entries, valid FHIR R4, with its narrative kept', () => {
    const conversion = convert(sectionFixture('results-edge-cases.xml'));
    const { section: results, entries } = section(conversion, 'Results');
    expect(entries.map((entry) => entry.resourceType)).toEqual(['DiagnosticReport', 'DiagnosticReport', 'Observation']);
    expect(results.text.div).toContain('No acute cardiopulmonary process.');
    expect(results.code.coding[0].code).toBe('30954-2');
    // Every Observation a report names is a draft too, though only the reports are the section's entries.
    const observations = ofType(conversion, 'Observation');
    for (const report of ofType(conversion, 'DiagnosticReport')) {
      for (const result of report.result as Array<{ reference: string }>) expect(observations.map((observation) => `Observation/${observation.id}`)).toContain(result.reference);
    }
    expectValid(conversion);
  });

  it('leave @medplum/ccda nothing to make of the section: no second resource for an organizer or a result', () => {
    const conversion = convert(sectionFixture('results-edge-cases.xml'));
    const reports = ofType(conversion, 'DiagnosticReport').map((report) => report.id);
    // @medplum/ccda made each organizer an Observation under the organizer's id.
    expect(ofType(conversion, 'Observation').filter((observation) => reports.includes(observation.id))).toEqual([]);
    const ids = conversion.drafts.map((draft) => `${draft.resourceType}/${draft.id}`);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('give the same document the same resources, ids included', () => {
    const raw = sectionFixture('conditions-edge-cases.xml');
    expect(convert(raw).drafts).toEqual(convert(raw).drafts);
  });

  it('claim a section by a templateId they know, else by its LOINC code', () => {
    const conversion = convert(sectionFixture('conditions-edge-cases.xml'));
    // 'More problems' has no templateId, only the Problem list LOINC code.
    expect(section(conversion, 'More problems').entries.map((entry) => entry.resourceType)).toEqual(['Condition']);
    // 'Family history (other)' has only the IHE template.
    expect(section(convert(sectionFixture('family-history-edge-cases.xml')), 'Family history (other)').entries.map((entry) => entry.resourceType)).toEqual(['FamilyMemberHistory']);
  });

  it('read an Assessment and Plan section as the plan of treatment it holds', () => {
    // Practice Fusion sends its planned care in one Assessment and Plan section (2.16.840.1.113883.10.20.22.2.9).
    const conversion = convertCorpusDocument('nurrahealth-ccda-to-fhir/practice_fusion_alice_newman.xml');
    const { entries } = section(conversion, 'Assessment and Plan');
    // Its Planned Acts (INT, ARQ) are requests, as C-CDA on FHIR maps them (sections/planned-entries.ts).
    expect(entries.filter((entry) => entry.resourceType === 'ServiceRequest').map((entry) => entry['intent'])).toEqual(['plan', 'proposal']);
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported' && issue.text.includes('Assessment and Plan'))).toEqual([]);
    expect(problemsOf(conversion, ['ServiceRequest'])).toEqual([]);
  });

  it('read each Instruction act of an Instructions section as a CarePlan, its words from the narrative', () => {
    const conversion = convertCorpusDocument('microsoft-fhir-converter/170.314B2_Amb_CCD.xml');
    const { section: instructions, entries } = section(conversion, 'Instructions');
    expect(entries.map((entry) => entry.resourceType)).toEqual(['CarePlan', 'CarePlan']);
    expect(entries.map((entry) => entry['intent'])).toEqual(['plan', 'plan']);
    expect(entries.map((entry) => (entry['category'] as Array<{ coding: Array<{ code: string }> }>)[0]!.coding[0]!.code)).toEqual(['225967005', '385827001']);
    // The act's text is a reference into the narrative: the description is what the narrative says there.
    for (const entry of entries) {
      expect(typeof entry['description']).toBe('string');
      expect(instructions.text.div).toContain(String(entry['description']).split(' ')[0]);
    }
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported')).toEqual([]);
    expect(problemsOf(conversion, ['CarePlan'])).toEqual([]);
  });

  it('read each Note Activity of the Notes sections as a DocumentReference holding the note', () => {
    // ONC's USCDI v3 API access sample: three Notes sections (procedure, consultation, progress note).
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/170.315_g9_api_access_amb_svap_uscdiv3_sample1.xml');
    const notes = ofType(conversion, 'DocumentReference').filter((reference) => (reference['category'] as Array<{ coding: Array<{ code: string }> }> | undefined)?.[0]?.coding[0]?.code === 'clinical-note');
    expect(notes).toHaveLength(3);
    for (const note of notes) {
      expect(note['status']).toBe('current');
      expect(note['subject']).toEqual({ reference: expect.stringMatching(/^Patient\//) });
      expect((note['type'] as { coding: Array<{ code: string }> }).coding.map((coding) => coding.code)).toContain('34109-9');
      const attachment = (note['content'] as Array<{ attachment: { contentType: string; data: string } }>)[0]!.attachment;
      expect(attachment.contentType).toBe('text/plain');
      expect(Buffer.from(attachment.data, 'base64').toString('utf8').length).toBeGreaterThan(10);
      expect(note['author']).toHaveLength(1);
    }
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported')).toEqual([]);
    expect(problemsOf(conversion, ['DocumentReference', 'ServiceRequest'])).toEqual([]);
  });

  it('keep a note whose text points at nothing, without its text, and say so', () => {
    // ONC's Cures sample 3 references #DishcargeSummaryNote_1 where the narrative has DischargeSummaryNote_1.
    const conversion = convertCorpusDocument('onc-cures-update-data/170.315_b1_toc_cures_sample3.xml');
    const notes = ofType(conversion, 'DocumentReference').filter((reference) => reference['docStatus'] === 'final');
    expect(notes.length).toBeGreaterThanOrEqual(3);
    const unread = notes.filter((note) => (note['content'] as Array<{ attachment: Record<string, unknown> }>)[0]!.attachment['data'] === undefined);
    expect(unread).toHaveLength(2);
    expect(conversion.issues.filter((issue) => issue.code === 'value-not-converted' && issue.text.includes('#DishcargeSummaryNote_1'))).toHaveLength(2);
    expect(problemsOf(conversion, ['DocumentReference'])).toEqual([]);
  });

  it('read a Patient Referral Act of a Reason for Referral section as a ServiceRequest with its reason', () => {
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/170.315_g9_api_access_amb_svap_uscdiv3_sample1.xml');
    const { entries } = section(conversion, 'REASON FOR REFERRAL');
    expect(entries.map((entry) => entry.resourceType)).toEqual(['ServiceRequest']);
    const [referral] = entries;
    expect(referral).toMatchObject({ status: 'active', intent: 'plan', occurrenceDateTime: '2022-06-15' });
    expect(codeOf(referral!['code'])).toBe('310449005');
    expect(codeOf(referral!['category'][0])).toBe('3457005');
    expect((referral!['reasonCode'] as unknown[]).map(codeOf)).toEqual(['386661006']);
    expect(problemsOf(conversion, ['ServiceRequest'])).toEqual([]);
  });

  it('read each intervention of a Care Plan as a CarePlan whose activities are its planned or done parts', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Care_Plan.xml');
    const { entries } = section(conversion, 'Interventions Section');
    expect(entries.map((entry) => [entry['title'], entry['status'], entry['intent']])).toEqual([['Planned intervention', 'active', 'plan'], ['Intervention', 'completed', 'plan']]);
    const [planned, done] = entries as Array<Record<string, any>>;
    expect(planned!['activity'].map((a: any) => [a.detail.kind, codeOf(a.detail.code), a.detail.status])).toEqual([
      ['ServiceRequest', '423171007', 'not-started'],
      ['ServiceRequest', '371907003', 'not-started'],
      ['ServiceRequest', '71850-2', 'not-started'],
    ]);
    expect(done!['activity'].map((a: any) => [codeOf(a.detail.code), a.detail.status])).toEqual([['423171007', 'completed']]);
    // Both point at the pulse-ox goal by Entry Reference: linked to the Goal made of it.
    const [goal] = ofType(conversion, 'Goal');
    expect(goal!.id).toBe(deterministicId('CdaElement', '3700b3b0-fbed-11e2-b778-0800200c9a66', ''));
    expect(planned!['goal']).toEqual([{ reference: `Goal/${goal!.id}` }]);
    expect(done!['goal']).toEqual([{ reference: `Goal/${goal!.id}` }]);
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported')).toEqual([]);
    expect(problemsOf(conversion, ['CarePlan'])).toEqual([]);
  });

  it('leaves a statement its own id when an Entry Reference to it comes first in the document', () => {
    // The health concern names the goal by Entry Reference, sections before the Goals section holds the goal itself.
    const xml = readFileSync(path.join(CORPUS, 'hl7-c-cda-examples', 'Care_Plan.xml'), 'utf8').replace(
      '<effectiveTime value="20130616"/>',
      '<effectiveTime value="20130616"/><entryRelationship typeCode="REFR"><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.122"/><id root="3700b3b0-fbed-11e2-b778-0800200c9a66"/><code nullFlavor="NP"/><statusCode code="completed"/></act></entryRelationship>',
    );
    const conversion = convert(xml);
    const [goal] = ofType(conversion, 'Goal');
    expect(goal!.id).toBe(deterministicId('CdaElement', '3700b3b0-fbed-11e2-b778-0800200c9a66', ''));
    for (const plan of section(conversion, 'Interventions Section').entries) expect(plan['goal']).toEqual([{ reference: `Goal/${goal!.id}` }]);
  });

  it('read the diagnoses an Assessment section carries as encounter diagnoses, and Hospital Discharge Instructions as instructions', () => {
    const conversion = convert(sectionFixture('assessment-discharge-instructions.xml'));
    expectValid(conversion);
    const { entries: assessed } = section(conversion, 'Assessments');
    expect(assessed.map((entry) => entry.resourceType)).toEqual(['Condition']);
    expect(codeOf(assessed[0]!['code'])).toBe('385093006');
    expect(codeOf(assessed[0]!['category'][0])).toBe('encounter-diagnosis');
    // The Glasgow coma score is no diagnosis: reported, not made a Condition.
    expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'entries-not-converted', location: expect.stringMatching(/component\[1\]\/section\/entry\[2\]\/observation$/) }));
    const { entries: instructions } = section(conversion, 'Discharge Instructions');
    expect(instructions.map((entry) => [entry.resourceType, entry['description']])).toEqual([['CarePlan', 'Rest and drink plenty of fluids for a week.']]);
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported')).toEqual([]);
    // The comment on the section is no clinical statement: nothing is reported of it, and the section counts one entry.
    expect(conversion.issues.filter((issue) => issue.location?.includes('component[2]/section'))).toEqual([]);
  });

  it('read Instructions known only by their LOINC code; an instruction that says nothing, or a statement of another kind, is reported', () => {
    const conversion = convert(sectionFixture('instructions-edge-cases.xml'));
    const { section: instructions, entries } = section(conversion, 'Instructions');
    expect(entries).toMatchObject([
      {
        resourceType: 'CarePlan',
        status: 'completed',
        intent: 'plan',
        category: [{ coding: [{ system: 'http://snomed.info/sct', code: '409073007' }] }],
        description: 'Keep the cast dry and elevate the arm for 48 hours.',
        created: '2024-03-15T14:45:00-05:00',
        note: [{ text: 'Patient repeated the instructions back.' }],
      },
      { resourceType: 'CarePlan', status: 'revoked', description: 'Low-salt diet.' },
    ]);
    // The narrative as sent, in order: text around an inline element, a line break inside a sentence as one space.
    expect(instructions.text.div).toContain('<item ID="comment1">Patient <content styleCode="Italics">repeated</content> the instructions back.</item>');
    const at = '/ClinicalDocument/component/structuredBody/component[1]/section';
    expect(conversion.issues.filter((issue) => issue.location?.startsWith(at)).map((issue) => `${issue.severity} ${issue.code} ${issue.location!.slice(at.length)}`)).toEqual([
      // INSTR-3 says nothing and points nowhere: a placeholder, noted; the observation is lost, warned of.
      'information entries-not-converted /entry[3]/act',
      'warning entries-not-converted /entry[4]/observation',
    ]);
    expectValid(conversion);
  });

  it('report the entries they leave out, with the section, unless an issue of the entry says why', () => {
    // The section's negated observation is left out with an issue of its own; a statement of a kind the section does
    // not hold (a substanceAdministration) is left out with none, and the section says so, naming that entry.
    const raw = sectionFixture('assessments-edge-cases.xml').toString('utf8');
    const first = raw.indexOf('<entry>');
    const stray = '<entry><substanceAdministration classCode="SBADM" moodCode="EVN"><id root="2.16.840.1.113883.19.5" extension="STRAY-1"/><statusCode code="completed"/></substanceAdministration></entry>\n          ';
    const conversion = convert(raw.slice(0, first) + stray + raw.slice(first));
    const at = '/ClinicalDocument/component/structuredBody/component[1]/section';
    expect(conversion.issues.filter((issue) => issue.location === at)).toEqual([
      expect.objectContaining({ severity: 'warning', code: 'entries-not-converted', text: "section 'Functional status' (47420-5): 2 of 4 entries were not converted: entry[1] (substanceAdministration)" }),
    ]);
    expect(convert(raw).issues.filter((issue) => issue.location === at)).toEqual([]);
  });

  it('cost only their own section when they fail, whose narrative stays in the Composition', () => {
    const failing: SectionConverter = {
      name: 'failing',
      roots: [],
      loincCodes: ['30954-2'],
      convert() {
        throw new TypeError('a shape nobody expected');
      },
    };
    const converters = SECTION_CONVERTERS as SectionConverter[];
    const results = converters.findIndex((converter) => converter.loincCodes.includes('30954-2'));
    const [replaced] = converters.splice(results, 1, failing);
    try {
      // Without its templateId the results section is claimed by its LOINC code alone, by the failing converter.
      const raw = sectionFixture('results-edge-cases.xml').toString('utf8').replace('<templateId root="2.16.840.1.113883.10.20.22.2.3.1" extension="2015-08-01"/>', '');
      const conversion = convert(raw);
      expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'section-failed', location: '/ClinicalDocument/component/structuredBody/component[1]/section' }));
      const { section: failed, entries } = section(conversion, 'Results');
      expect(entries).toEqual([]);
      expect(failed.text.div).toContain('Cloudy, pale yellow');
      expect(ofType(conversion, 'Patient')).toHaveLength(1);
      expectValid(conversion);
    } finally {
      converters.splice(results, 1, replaced!);
    }
  });
});

describe('property: every mutation of a document with these sections converts to valid FHIR R4 or is refused with a code', () => {
  for (const name of ['conditions-edge-cases.xml', 'family-history-edge-cases.xml', 'assessments-edge-cases.xml', 'results-edge-cases.xml']) {
    it(name, () => {
      const text = sectionFixture(name).toString('utf8');
      for (const mutated of mutations(text, 40, name.length * 7919)) {
        let conversion: ReturnType<typeof convert>;
        try {
          conversion = convert(mutated);
        } catch (error) {
          if (!isAnchorlineError(error) || error.retryable) throw error;
          continue;
        }
        for (const draft of conversion.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
      }
    });
  }
});
