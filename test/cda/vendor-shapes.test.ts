/**
 * Shapes EHR vendors' certification samples send (ONC 2015 C-CDA samples, jddamore/ccda-samples) that the converter
 * would have copied into invalid FHIR: header and section elements sent with attributes (`<title mediaType>`,
 * `<city partType>`), an ethnicity sent as a nullFlavor with its text alone, a goal whose value is a nullFlavor.
 * Each document is a crafted one (test/fixtures/cda/sections/instructions-edge-cases.xml) changed to that shape.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { mergeDraft, validateFhirResource } from '../../mappers/index.ts';
import { convertBytes, convertCorpusDocument } from '../support/cda-section-documents.ts';
import { statementIdOf } from '../../mappers/cda/normalize.ts';

const BASE = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda', 'sections', 'instructions-edge-cases.xml'), 'utf8');

function convertWith(change: (xml: string) => string) {
  const conversion = convertBytes(Buffer.from(change(BASE), 'utf8'));
  const resources = conversion.drafts.map((draft) => mergeDraft(undefined, draft) as Record<string, unknown>);
  return { conversion, resources, of: (type: string) => resources.filter((resource) => resource.resourceType === type) };
}

function expectValid(resources: Array<Record<string, unknown>>): void {
  for (const resource of resources) expect(validateFhirResource(resource), `${resource.resourceType}/${resource.id}`).toEqual([]);
}

describe('vendor shapes', () => {
  it('reads titles and address parts sent with attributes as their text, and leaves out a part with none', () => {
    const { resources, of } = convertWith((xml) =>
      xml
        .replace('<title>Instructions edge cases</title>', '<title mediaType="text/plain" representation="TXT">Instructions edge cases</title>')
        .replace('<title>Instructions</title>', '<title mediaType="text/plain" representation="TXT">Instructions</title>')
        .replace(
          '      <id root="2.16.840.1.113883.19.5" extension="IN-1"/>',
          '      <id root="2.16.840.1.113883.19.5" extension="IN-1"/>\n      <addr use="HP"><streetAddressLine partType="SAL">12 Sejong-daero</streetAddressLine><city partType="CTY">Seoul</city><state nullFlavor="UNK"/><postalCode partType="ZIP">04524</postalCode></addr>',
        )
        .replace('<given>Minho</given>', '<given qualifier="CL">Minho</given>'),
    );
    const [composition] = of('Composition');
    expect(composition!['title']).toBe('Instructions edge cases');
    expect((composition!['section'] as Array<{ title: unknown }>).map((section) => section.title)).toEqual(['Instructions']);
    const [patient] = of('Patient');
    expect(patient!['address']).toEqual([expect.objectContaining({ line: ['12 Sejong-daero'], city: 'Seoul', postalCode: '04524' })]);
    expect((patient!['address'] as Array<Record<string, unknown>>)[0]!['state']).toBeUndefined();
    expect(patient!['name']).toEqual([expect.objectContaining({ family: 'Park', given: ['Minho'] })]);
    expectValid(resources);
  });

  it('keeps a time of day whose offset or digits are garbled to the day it begins with, and leaves out a mistyped date', () => {
    const { conversion, resources } = convertWith((xml) =>
      xml.replace('<effectiveTime value="20240315"/>', '<effectiveTime value="20240316143000-5000"/>').replace('<time value="20240315144500-0500"/>', '<time value="202403151"/>'),
    );
    expect(conversion.issues.filter((issue) => issue.code === 'time-not-converted').map((issue) => issue.text)).toEqual([
      '2 time value(s) are not CDA timestamps and were kept to the day they begin with (1) or left out (1)',
    ]);
    // The day of the garbled time is on the instruction; nothing made of the mistyped one is.
    expect(JSON.stringify(resources)).toContain('"2024-03-16"');
    expect(JSON.stringify(resources)).not.toMatch(/"2024-03-15T14:45/);
    expectValid(resources);
  });

  it('leaves out an ethnicity sent as a nullFlavor with its text alone, rather than an empty category', () => {
    const { resources, of } = convertWith((xml) =>
      xml.replace(
        '<birthTime value="19600101"/>',
        '<birthTime value="19600101"/>\n        <ethnicGroupCode nullFlavor="OTH"><originalText>Korean</originalText></ethnicGroupCode>',
      ),
    );
    const [patient] = of('Patient');
    const extensions = (patient!['extension'] as Array<{ extension?: unknown[] }> | undefined) ?? [];
    for (const extension of extensions) expect(extension.extension ?? [null]).not.toEqual([]);
    expectValid(resources);
  });

  it('says a goal sent as a nullFlavor value is not known, where FHIR requires its description', () => {
    const goals = `<component>
        <section>
          <templateId root="2.16.840.1.113883.10.20.22.2.60"/>
          <code code="61146-7" codeSystem="2.16.840.1.113883.6.1" displayName="Goals"/>
          <title>Goals</title>
          <text>No goal recorded.</text>
          <entry>
            <observation classCode="OBS" moodCode="GOL">
              <templateId root="2.16.840.1.113883.10.20.22.4.121"/>
              <id root="2.16.840.1.113883.19.5.99999.61" extension="GOAL-1"/>
              <code code="58144-7" codeSystem="2.16.840.1.113883.6.1" displayName="Resident's overall goal"/>
              <statusCode code="active"/>
              <value xsi:type="ST" nullFlavor="UNK"/>
            </observation>
          </entry>
        </section>
      </component>
    </structuredBody>`;
    const { resources, of } = convertWith((xml) => xml.replace('</structuredBody>', goals));
    const [goal] = of('Goal');
    expect(goal!['description']).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
    expectValid(resources);
  });

  it('codes a social history observation sent without a code by the narrative its text points at, and says so', () => {
    const section = (code: string) => `
      <component>
        <section>
          <templateId root="2.16.840.1.113883.10.20.22.2.17" extension="2015-08-01"/>
          <code code="29762-2" codeSystem="2.16.840.1.113883.6.1"/>
          <title>Social History</title>
          <text><table><tbody><tr ID="habit-1"><td ID="habit-1-name">Smoking</td><td>2016-12-22</td></tr></tbody></table></text>
          <entry>
            <observation classCode="OBS" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.38" extension="2015-08-01"/>
              <id root="2.16.840.1.113883.19.5" extension="SH-1"/>
              ${code}
              <text><reference value="#habit-1-name"/></text>
              <statusCode code="completed"/>
              <effectiveTime><low value="20161222150847"/></effectiveTime>
            </observation>
          </entry>
        </section>
      </component>
    </structuredBody>`;
    const uncoded = convertWith((xml) => xml.replace('</structuredBody>', section('<code nullFlavor="UNK"/>')));
    const habit = uncoded.of('Observation').find((resource) => JSON.stringify(resource['category']).includes('social-history'));
    expect(habit?.['code']).toEqual({ text: 'Smoking' });
    expect(JSON.stringify(habit)).toContain('2016-12-22');
    expect(uncoded.conversion.issues.filter((issue) => issue.code === 'code-from-narrative').map((issue) => issue.severity)).toEqual(['information']);
    expect(uncoded.conversion.issues.filter((issue) => issue.text.includes('Social History'))).toEqual([]);
    expectValid(uncoded.resources);
    // A coded one is converted as sent, with no issue.
    const coded = convertWith((xml) => xml.replace('</structuredBody>', section('<code code="229819007" codeSystem="2.16.840.1.113883.6.96" displayName="Tobacco use and exposure"/>')));
    expect(coded.of('Observation').map((resource) => (resource['code'] as { coding?: Array<{ code: string }> }).coding?.[0]?.code)).toContain('229819007');
    expect(coded.conversion.issues.map((issue) => issue.code)).not.toContain('code-from-narrative');
  });
});

describe('narrative anchors', () => {
  it('reads the text after an empty element an entry points at, as written before the text it names, and not past a block or another ID', () => {
    const { of, resources } = convertWith((xml) =>
      xml
        .replace(
          '<item ID="instr1"><content styleCode="Bold">Keep the cast dry and elevate the arm for 48 hours.</content></item>',
          '<item><content ID="instr1"/>Keep the cast dry and elevate the arm for 48 hours.<br/>Call if the fingers go numb.</item>',
        )
        .replace('<item ID="comment1">Patient', '<item><content ID="comment1"/><content ID="other"/>Patient'),
    );
    const [instruction] = of('CarePlan');
    expect(instruction!['description']).toBe('Keep the cast dry and elevate the arm for 48 hours.');
    // An anchor followed at once by another ID names nothing: the comment is left out rather than given its text.
    expect(instruction!['note']).toBeUndefined();
    expectValid(resources);
  });
});

describe('instructions that say nothing', () => {
  it('warns of one whose text points at narrative that is not there, and notes one that points nowhere', () => {
    const issuesOf = (text: string) =>
      convertWith((xml) => xml.replace('<code nullFlavor="NI"/>\n              <statusCode code="completed"/>', `<code nullFlavor="NI"/>${text}\n              <statusCode code="completed"/>`))
        .conversion.issues.filter((issue) => issue.location?.endsWith('/entry[3]/act'))
        .map((issue) => issue.severity);
    expect(issuesOf('<text><reference value="#missing"/></text>')).toEqual(['warning']);
    expect(issuesOf('<text><reference nullFlavor="UNK"/></text>')).toEqual(['information']);
    expect(issuesOf('')).toEqual(['information']);
  });
});

describe('sections about the document', () => {
  it('notes a CCD 1.0 Summary Purpose section as about the document, not as a section of no known kind', () => {
    const conversion = convertCorpusDocument('amida-blue-button/C32.xml');
    const about = conversion.issues.filter((issue) => issue.text.includes('Summary Purpose'));
    expect(about.map((issue) => [issue.severity, issue.code])).toEqual([['information', 'entries-not-converted']]);
    expect(about[0]!.text).toContain('says why the document was written');
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported')).toEqual([]);
  });

  it('keeps a Diagnostic Imaging Report\'s history, findings and impression: text values that point at the narrative', () => {
    // HL7's DIR sample: each report element is an observation whose value is an ED referring to a narrative paragraph.
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Diagnostic_Imaging_Report.xml');
    const observations = conversion.drafts.filter((draft) => draft.resourceType === 'Observation').map((draft) => mergeDraft(undefined, draft) as Record<string, any>);
    const byCode = (code: string) => observations.find((resource) => resource['code']?.coding?.[0]?.code === code);
    expect(byCode('121060')?.['valueString']).toBe('Sore throat.');
    expect(byCode('121071')?.['valueString']).toMatch(/^The cardiomediastinum is within normal limits\. .* unremarkable\.$/);
    expect(byCode('121073')?.['valueString']).toMatch(/^No acute cardiopulmonary process\. .* not excluded\.$/);
    expect(conversion.issues.filter((issue) => issue.code === 'value-not-converted')).toEqual([]);
    // The procedure context states the study done: a Procedure with its code and time. The DICOM object catalog
    // only points at images, and is noted as such rather than warned of.
    const procedures = conversion.drafts.filter((draft) => draft.resourceType === 'Procedure').map((draft) => mergeDraft(undefined, draft) as Record<string, any>);
    expect(procedures.map((procedure) => [procedure['code']?.coding?.[0]?.code, procedure['performedDateTime']?.slice(0, 16)])).toEqual([['70548', '2006-08-23T22:24']]);
    expect(conversion.issues.filter((issue) => issue.severity === 'warning')).toEqual([]);
    expect(conversion.issues.filter((issue) => issue.code === 'entries-not-converted').map((issue) => issue.location)).toEqual([
      '/ClinicalDocument/component/structuredBody/component[1]/section',
    ]);
    expectValid([...observations, ...procedures]);
  });

  it('converts a document written with the CDA namespace bound to a prefix exactly as the same document unprefixed', () => {
    const raw = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus', 'ccda', 'hl7-c-cda-examples', 'CCD.xml'), 'utf8');
    // Every element without a prefix gets `cda:`; the default namespace declaration becomes the prefix's.
    const prefixed = raw
      .replace(/<(\/?)(?![?!])([A-Za-z_][\w.-]*)(?=[\s/>])/g, '<$1cda:$2')
      .replace('xmlns="urn:hl7-org:v3"', 'xmlns:cda="urn:hl7-org:v3"');
    expect(prefixed).toContain('<cda:ClinicalDocument');
    expect(prefixed).toContain('</cda:section>');
    const plain = convertBytes(Buffer.from(raw, 'utf8'));
    const converted = convertBytes(Buffer.from(prefixed, 'utf8'));
    // The same resources, but for the DocumentReference, which describes the bytes as sent (their hash and size).
    const clinical = (conversion: typeof plain) => JSON.stringify(conversion.drafts.filter((draft) => draft.resourceType !== 'DocumentReference'));
    expect(converted.drafts.length).toBeGreaterThan(20);
    expect(clinical(converted)).toBe(clinical(plain));
    expect(converted.issues).toEqual(plain.issues);
  });

  it('reads a statement that is nothing but an id as a reference to the statement of that id, which keeps its own id', () => {
    // Microsoft's sample ambulatory CCD: problem acts name the visit as <encounter><id …/></encounter> before the
    // Encounters section describes it with the same id.
    const conversion = convertCorpusDocument('microsoft-fhir-converter/170.314B2_Amb_CCD.xml');
    const encounters = conversion.drafts.filter((draft) => draft.resourceType === 'Encounter').map((draft) => mergeDraft(undefined, draft) as Record<string, any>);
    const visit = encounters.filter((encounter) => JSON.stringify(encounter.identifier ?? []).includes('5283815'));
    // One Encounter of the visit, under the id its own id gives it (another document naming it updates the same one).
    expect(visit.map((encounter) => encounter.id)).toEqual([statementIdOf('1.3.6.1.4.1.22812.3.99930.3.3.4', '5283815')]);
    expect(visit[0]!.type?.[0]?.coding?.[0]?.code).toBe('99231');
  });

  it('warns of a body it cannot read rather than converting the header alone in silence', () => {
    // A pre-release CDA sample whose body is <StructuredBody> (and whose statements are <Observation>, ...).
    const conversion = convertCorpusDocument('brynlewis-c-cda-viewer/hl7-sample.xml');
    expect(conversion.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'body-not-structured', location: '/ClinicalDocument/component' })]);
    expect(conversion.issues[0]!.text).toContain("'StructuredBody'");
  });

  it('converts the entries of subsections, which the converter reads only at the top level', () => {
    // HL7's Referral Note: Physical Examination holds a Skin subsection whose Pressure Ulcer Observation is a finding.
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Referral_Note.xml');
    const findings = conversion.drafts
      .filter((draft) => draft.resourceType === 'Observation')
      .map((draft) => mergeDraft(undefined, draft) as Record<string, any>)
      .filter((observation) => JSON.stringify(observation['valueCodeableConcept'] ?? {}).includes('425144005'));
    expect(findings).toHaveLength(1);
    expectValid(findings);
    // The subsection is a section of the Composition inside its parent, as in the document, with its own narrative
    // and the finding as its entry; the parent keeps its own narrative.
    const composition = mergeDraft(undefined, conversion.drafts.find((draft) => draft.resourceType === 'Composition')!) as Record<string, any>;
    const sections = composition['section'] as Array<Record<string, any>>;
    expect(sections.map((section) => section['title'])).not.toContain('SKIN, PHYSICAL FINDING');
    const examination = sections.find((section) => section['title'] === 'Physical Examination')!;
    expect(examination['text']['div']).toBeTruthy();
    expect(examination['section']).toHaveLength(1);
    expect(examination['section'][0]).toMatchObject({ title: 'SKIN, PHYSICAL FINDING', text: { status: expect.any(String) } });
    expect(examination['section'][0]['entry']).toContainEqual(expect.objectContaining({ reference: `Observation/${findings[0]!['id']}` }));
    expectValid([composition]);
  });

  it('keeps the day of a procedure and of a planned visit sent as one time value, and calls a planned visit planned', () => {
    // The converter reads both times only as intervals (low, high).
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Transfer_Summary.xml');
    const of = (type: string) => conversion.drafts.filter((draft) => draft.resourceType === type).map((draft) => mergeDraft(undefined, draft) as Record<string, any>);
    const checkUp = of('Encounter').find((encounter) => JSON.stringify(encounter['type'] ?? []).includes('185349003'));
    expect(checkUp).toMatchObject({ status: 'planned', period: { start: '2013-06-15' } });
    expect(of('Procedure').map((procedure) => procedure['performedDateTime'] ?? procedure['performedPeriod']).every((performed) => performed !== undefined)).toBe(true);
    expectValid([...of('Encounter'), ...of('Procedure')]);
  });
});
