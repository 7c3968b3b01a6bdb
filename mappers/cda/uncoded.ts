/**
 * Observations sent without a code that say in their narrative what they are. Some systems code a Social History
 * Observation `<code nullFlavor="UNK"/>` and point its `text` at the narrative row that names the habit ("Smoking",
 * with its dates). @medplum/ccda makes no Observation of an observation without a code, so the habit would be lost
 * though the document states it. Before conversion, such an observation's code gets the text its `text` points at
 * as its originalText: the Observation is coded by text alone (CodeableConcept.text), which is what the sender said.
 * An information issue says so. Only observations of events (moodCode EVN) that are entries of a section in their own
 * right are named so: the parts of an organizer or of another statement are read by what holds them, and a goal is
 * described by its value or text already.
 *
 * Likewise observation values of type ED that are text: @medplum/ccda reads ST values and drops ED ones, though C-CDA
 * on FHIR maps both to valueString. A Diagnostic Imaging Report's findings and impressions are such values, each a
 * reference to the narrative paragraph that says it. Before conversion, each becomes the ST of the text it holds or
 * points at, so the Observation keeps what the report says.
 */
import type { CdaIssue } from './issues.ts';
import { asNodes } from './normalize.ts';
import { Narrative, attr, first, xsiType } from './sections/cda-read.ts';

type Node = Record<string, unknown>;

/** Whether a code element names something: a code, a display name, a translation with a code, or an originalText. */
function isCoded(code: Node | undefined): boolean {
  if (code === undefined) return false;
  if (attr(code, 'code') !== undefined || attr(code, 'displayName') !== undefined) return true;
  if (code.originalText !== undefined) return true;
  return asNodes(code.translation).some((translation) => attr(translation, 'code') !== undefined);
}

/** Names each uncoded top-level observation of a section by the narrative its text points at; returns how many. */
export function nameUncodedObservations(section: Node, location: string, issues: CdaIssue[]): number {
  let narrative: Narrative | undefined;
  let named = 0;
  for (const entry of asNodes(section.entry)) {
    for (const observation of asNodes(entry.observation)) {
      // A goal (moodCode GOL) is described by its value or text, which the converter reads already.
      if (attr(observation, 'moodCode') !== 'EVN') continue;
      const code = first(observation.code);
      if (isCoded(code)) continue;
      narrative ??= new Narrative(section.text);
      const text = narrative.textOf(observation.text);
      if (text === undefined) continue;
      observation.code = { ...(code ?? {}), originalText: { '#text': text } };
      named++;
    }
  }
  if (named > 0) {
    issues.push({
      severity: 'information',
      code: 'code-from-narrative',
      text: `${named} observation(s) sent without a code were coded by the narrative text their text points at`,
      location,
    });
  }
  return named;
}

/** The deepest entry structure searched for observations (entryRelationships nest; documents stay far shallower). */
const MAX_ENTRY_DEPTH = 32;

/**
 * Rewrites the text ED values of a section's observations, at any depth of its entries, as ST values of their text
 * (their own, or the narrative their reference points at). An ED of base64 data, or one whose text cannot be found,
 * is left as it is (and reported as a value not converted).
 */
export function readTextValues(section: Node): void {
  let narrative: Narrative | undefined;
  const visit = (node: Node, depth: number): void => {
    if (depth > MAX_ENTRY_DEPTH) return;
    for (const observation of asNodes(node.observation)) {
      const values = asNodes(observation.value);
      let changed = false;
      values.forEach((value, i) => {
        if (xsiType(value) !== 'ED' || String(value['@_representation'] ?? '').toUpperCase() === 'B64') return;
        narrative ??= new Narrative(section.text);
        const text = narrative.textOf(value);
        if (text === undefined) return;
        values[i] = { '@_xsi:type': 'ST', '#text': text };
        changed = true;
      });
      if (changed) observation.value = Array.isArray(observation.value) ? values : values[0];
    }
    for (const [name, child] of Object.entries(node)) {
      if (name.charCodeAt(0) === 0x40 /* @ */ || name === 'text' || name === 'value' || name === 'code') continue;
      for (const item of asNodes(child)) visit(item, depth + 1);
    }
  };
  for (const entry of asNodes(section.entry)) visit(entry, 0);
}

