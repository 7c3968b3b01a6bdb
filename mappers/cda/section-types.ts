/**
 * Sections converted here rather than by @medplum/ccda: the ones it does not read at all (family history becomes an
 * Observation with a data-absent code there; admission and discharge diagnoses, payers, medical equipment, advance
 * directives and the rest it leaves as narrative), or reads into the wrong resource. Each converter is a file under
 * sections/ that reads a section of the parsed, normalized document (normalize.ts: deterministic ids on the clinical
 * statements, times in the sender's zone) and returns resources in the converter's output form, which then take the
 * same path as the converter's own (resources.ts: completed, tidied, turned into drafts).
 *
 * convert.ts runs the converter a section is claimed by (section-converters.ts: sectionConverterFor) and hides that section's entries from
 * @medplum/ccda, which still writes the section's title, code and narrative into the Composition; the resources made
 * here are added to that section's entries.
 *
 * Converters follow the HL7 C-CDA on FHIR mapping guidance (build.fhir.org/ig/HL7/ccda-on-fhir), and never throw for
 * a document's content: an entry that cannot be converted is an issue (context.issue) and the next entry is read.
 */

import type { Hl7MappingOptions } from '../types.ts';

import type { CdaIssue } from './issues.ts';
import type { FhirResource } from './resources.ts';

export type Node = Record<string, unknown>;

/** What a section converter is given besides its section. */
export interface SectionContext {
  /** `Patient/<id>`: the subject of every clinical resource of the document. */
  readonly patientReference: string;
  readonly compositionId: string;
  readonly mapping: Hl7MappingOptions;
  /** The section's XPath, for issues. */
  readonly location: string;
  /**
   * The parsed, normalized ClinicalDocument, for what a section's entries depend on in the header (the encounter the
   * document is about: componentOf/encompassingEncounter). Read it; never change it.
   */
  readonly document: Node;
  /**
   * The id normalize.ts gave a clinical statement (act, observation, substanceAdministration, organizer, encounter,
   * procedure) or an author/performer/organization element: the resource made of it takes that id. Undefined for an
   * element normalize.ts gives none (a supply, a participantRole): use derivedId.
   */
  idOf(element: Node): string | undefined;
  /**
   * A deterministic id for a resource made of `element` that normalize.ts gave no id, or of a second resource made
   * of one element (the Medication of a substanceAdministration): from the element's own id when it has one, else
   * from `owner` (the id of the resource it belongs to) and `purpose`. Registered, so it is kept as given.
   */
  derivedId(resourceType: string, element: Node | undefined, owner: string, purpose: string): string;
  /** A CD/CE/CV/CO as a CodeableConcept (translations as further codings, originalText kept as text). */
  concept(code: unknown): Record<string, unknown> | undefined;
  /** A TS (or IVL_TS's value/low) as a FHIR dateTime; undefined when absent or not a time. */
  dateTime(ts: unknown): string | undefined;
  /** A TS as a FHIR date (the date part). */
  date(ts: unknown): string | undefined;
  /** An IVL_TS as a Period (low/high, or value as start). */
  period(ivl: unknown): { start?: string; end?: string } | undefined;
  /** Records an issue on the document (an entry not converted, a value left out). */
  issue(severity: CdaIssue['severity'], code: CdaIssue['code'], text: string, location?: string): void;
}

/** What a converter made of one section. */
export interface SectionOutput {
  /** Every resource made, in document order (those the section lists first, then what they refer to). */
  resources: FhirResource[];
  /** The resources the Composition's section lists as its entries (the clinical statements themselves). */
  entries: FhirResource[];
  /** Clinical statements of the section's entries that were converted (countEntryStatements counts the sent ones). */
  converted: number;
  /**
   * Statements a resource points at by Entry Reference, as the resource ids they were given (normalize.ts
   * statementIdOf); linked once the whole document is converted (convert.ts), to those that were.
   */
  entryReferences?: Array<{ resource: FhirResource; targets: string[] }>;
}

export interface SectionConverter {
  /** What the section holds, as the README and issues name it. */
  name: string;
  /** Every templateId root that marks the section (C-CDA R1.1/R2.1, entries optional/required, IHE PCC). */
  roots: readonly string[];
  /** LOINC section codes of the section, for sections sent without a templateId we know. */
  loincCodes: readonly string[];
  /**
   * The entries it converts, when not all: the others are left to @medplum/ccda, which reads the section as the kind
   * sections.ts gives it (the procedures of an Anesthesia section beside its anesthetics). Absent: every entry.
   */
  claims?: (entry: Node) => boolean;
  convert(section: Node, context: SectionContext): SectionOutput;
}

