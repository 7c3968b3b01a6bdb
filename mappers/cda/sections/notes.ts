/**
 * Notes section (2.16.840.1.113883.10.20.22.2.65, C-CDA R2.1 Companion Guide; its code is the note type, so it is
 * claimed by template only): each Note Activity (2.16.840.1.113883.10.20.22.4.202) becomes a DocumentReference, as
 * C-CDA on FHIR and US Core map clinical notes:
 * - type: the act's code (LOINC 34109-9 Note) with its translations (the note's own type: progress note, H&P, ...);
 * - category: US Core `clinical-note`; status `current`; docStatus from the act's status (completed: final);
 * - content: the note itself, one attachment: its text as sent when it carries one (`mediaType` and base64 as
 *   sent, or plain text as UTF-8), else the narrative its reference points at, as text/plain;
 * - date: the earliest author time when it is a full instant (DocumentReference.date is an instant); author: the
 *   first author; context.period: the act's effectiveTime.
 * A note whose text cannot be read (a reference to an ID the narrative does not hold, as in some certification test
 * data) is kept with its type, author and time, its attachment stated unknown, and reported; a statement of another
 * kind in the section is reported. Note Activities sent in other sections that are converted here (Reason for
 * Referral) are converted the same way (noteActivity).
 */

import { actor } from './participants.ts';
import {
  attr,
  concept,
  DATA_ABSENT_REASON,
  earliestAuthorTime,
  entryStatements,
  first,
  firstAuthor,
  hasTemplate,
  identifiers,
  Narrative,
  narrativeExtension,
  resourceId,
  SectionResources,
  statusCodeOf,
  type FhirResource,
  type Node,
} from './cda-read.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

export const NOTE_ACTIVITY = '2.16.840.1.113883.10.20.22.4.202';
const CLINICAL_NOTE = { coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', code: 'clinical-note', display: 'Clinical Note' }] };
/** FHIR instant: to the second, with a zone. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MEDIA_TYPE = /^[a-z]+\/[a-z0-9.+-]+$/i;

export const notesSection: SectionConverter = {
  name: 'notes',
  roots: ['2.16.840.1.113883.10.20.22.2.65'],
  loincCodes: [],
  convert: convertNotes,
};

function convertNotes(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind !== 'act' || !hasTemplate(node, NOTE_ACTIVITY)) {
      context.issue('warning', 'entries-not-converted', `a ${kind} in a Notes section that is not a Note Activity was not converted`, at);
      continue;
    }
    out.entry(noteActivity(node, context, narrative, out, at));
    out.count();
  }
  return out.output();
}

/** The note's text as an attachment: what the text element carries, else the narrative it points at. */
function attachment(text: Node | undefined, narrative: Narrative): Record<string, string> | undefined {
  const own = typeof text?.['#text'] === 'string' ? text['#text'] : undefined;
  const mediaType = attr(text, 'mediaType');
  if (own !== undefined && own.trim() !== '') {
    if (attr(text, 'representation') === 'B64') {
      const data = own.replace(/\s+/g, '');
      if (BASE64.test(data)) return { contentType: mediaType !== undefined && MEDIA_TYPE.test(mediaType) ? mediaType : 'application/octet-stream', data };
    } else {
      return { contentType: mediaType !== undefined && MEDIA_TYPE.test(mediaType) ? mediaType : 'text/plain', data: Buffer.from(own.trim(), 'utf8').toString('base64') };
    }
  }
  const referenced = narrative.resolve(attr(first(text?.reference), 'value'));
  return referenced === undefined ? undefined : { contentType: 'text/plain', data: Buffer.from(referenced, 'utf8').toString('base64') };
}

/** A Note Activity as a DocumentReference (see the file comment). */
export function noteActivity(act: Node, context: SectionContext, narrative: Narrative, out: SectionResources, at: string): FhirResource {
  const text = first(act.text);
  let content: Record<string, unknown> | undefined = attachment(text, narrative);
  if (content === undefined) {
    const reference = attr(first(text?.reference), 'value');
    context.issue('warning', 'value-not-converted', reference === undefined ? 'a Note Activity has no text; it is kept without it' : `a Note Activity's text points at ${reference}, which the section's narrative does not hold; it is kept without its text`, at);
    content = { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] };
  }
  const date = earliestAuthorTime(act, context);
  const author = firstAuthor(act);
  const who = author === undefined ? undefined : actor(author, context, out);
  const status = statusCodeOf(act);
  const period = context.period(first(act.effectiveTime));
  return {
    resourceType: 'DocumentReference',
    id: resourceId('DocumentReference', act, context, at, 'note'),
    extension: narrativeExtension(act),
    identifier: identifiers(act, context),
    status: 'current',
    docStatus: status === 'completed' ? 'final' : status === 'active' ? 'preliminary' : undefined,
    type: concept(act.code, narrative),
    category: [CLINICAL_NOTE],
    subject: { reference: context.patientReference },
    date: date !== undefined && INSTANT.test(date) ? date : undefined,
    author: who === undefined ? undefined : [who],
    content: [{ attachment: content }],
    context: period === undefined ? undefined : { period },
  };
}
