/**
 * Instructions section (2.16.840.1.113883.10.20.22.2.45, LOINC 69730-0): what the patient was told to do, each an
 * Instruction act (4.20, moodCode INT) whose code says what kind of instruction (patient education, a self-care
 * topic) and whose text, usually a reference into the section's narrative, says what it was.
 *
 * C-CDA on FHIR maps no Instructions section. An Instruction act in a Plan of Treatment section becomes a CarePlan in
 * the converter (@medplum/ccda), but without its text when the text is a narrative reference, which is how most
 * documents send it. Here each act is a CarePlan the same way (intent plan, the act's code as its category) with the
 * instruction's words as the description, read from the narrative when referenced, the act's time as its period,
 * its earliest author time as created, and its comments as notes. An act with neither a code nor any text says
 * nothing and is reported; a statement of another kind in the section is reported too.
 */

import {
  attr,
  concept,
  earliestAuthorTime,
  entryStatements,
  first,
  identifiers,
  Narrative,
  narrativeExtension,
  notesOf,
  REQUEST_STATUS_OF_ACT,
  resourceId,
  SectionResources,
  statusCodeOf,
  type FhirResource,
  type Node,
} from './cda-read.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

export const instructionsSection: SectionConverter = {
  name: 'instructions',
  // Hospital Discharge Instructions (2.41 / 8653-8) hold the same Instruction acts when they hold entries.
  roots: ['2.16.840.1.113883.10.20.22.2.45', '2.16.840.1.113883.10.20.22.2.41'],
  loincCodes: ['69730-0', '8653-8'],
  convert: convertInstructions,
};

function convertInstructions(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind !== 'act') {
      context.issue('warning', 'entries-not-converted', `a ${kind} in an Instructions section was not converted (an instruction is an act)`, at);
      continue;
    }
    const plan = instruction(node, context, narrative, at);
    if (plan === undefined) continue;
    out.entry(plan);
    out.count();
  }
  return out.output();
}

export function instruction(act: Node, context: SectionContext, narrative: Narrative, at: string): FhirResource | undefined {
  const code = concept(act.code, narrative);
  const text = narrative.textOf(act.text) ?? code?.text ?? code?.coding?.find((coding) => coding.display !== undefined)?.display;
  if (code === undefined && text === undefined) {
    // One whose text points at narrative that is not there has lost its words; one that points nowhere (no
    // reference, or a nullFlavor one, as a section reading "No Information Present" sends) is a placeholder.
    const pointsAt = attr(first(first(act.text)?.reference), 'value') !== undefined;
    if (pointsAt) context.issue('warning', 'entries-not-converted', 'an instruction with neither a code nor any text was not converted', at);
    else context.issue('information', 'entries-not-converted', 'an instruction with neither a code nor any text, nor a reference to any (a placeholder for no information), was not converted', at);
    return undefined;
  }
  const period = context.period(first(act.effectiveTime));
  return {
    resourceType: 'CarePlan',
    id: resourceId('CarePlan', act, context, at, 'instruction'),
    extension: narrativeExtension(act),
    identifier: identifiers(act, context),
    status: REQUEST_STATUS_OF_ACT[statusCodeOf(act) ?? ''] ?? 'unknown',
    intent: 'plan',
    category: code === undefined ? undefined : [code],
    title: 'Instruction',
    description: text,
    subject: { reference: context.patientReference },
    period,
    created: earliestAuthorTime(act, context),
    note: notesOf(act, narrative),
  };
}
