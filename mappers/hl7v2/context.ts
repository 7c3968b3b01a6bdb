/**
 * What a message family's builders are given and what they give back: the mapping context, the builder signature
 * and the rows of the mapping table (registry.ts). Apart from the table itself, so that the families and the table
 * that lists them do not import each other.
 */
import type { Hl7Message, Hl7Segment } from '../../formats/hl7v2/index.ts';
import type { Hl7MappingOptions, PatientMerge, ResourceDraft } from '../types.ts';
import type { DirectoryDrafts } from './directory-drafts.ts';

/** What every builder gets: the parsed message, the options, and the header facts already read from MSH. */
export interface MappingContext {
  message: Hl7Message;
  options: Hl7MappingOptions;
  msh: Hl7Segment;
  /** MSH-9.1, e.g. 'ADT'. */
  messageType: string;
  /** MSH-9.2, e.g. 'A01'. */
  triggerEvent: string;
  /**
   * What names this message within its sender, for resources of this message alone (a patient it does not identify,
   * an order it gives no number): MSH-10, or for a message sent without one, `sha256:` and the SHA-256 of its parsed
   * segments, the same for every copy of the message and for no other.
   */
  controlId: string;
  /** Patient merges a builder found (A40); collected into MappingResult.merges. */
  merges: PatientMerge[];
  /**
   * The practitioners, organizations and locations the message names (directory.ts adds them as builders refer to
   * them); the registry puts them before the first draft that refers to them.
   */
  directory: DirectoryDrafts;
  /**
   * Segments that builders read one by one and that the message's unmapped-segment report accounts for one by one
   * (ROL, whose meaning depends on the segment it follows: roles.ts): each one a builder read, mapped or reported.
   */
  mappedSegments: Set<Hl7Segment>;
}

/**
 * Builds the drafts of one kind of resource from a message: one, several (an Observation per OBX), or none when the
 * message does not describe that resource.
 */
export type ResourceBuilder = (context: MappingContext) => ResourceDraft | ResourceDraft[] | undefined;

/** One row of the table: `${MSH-9.1}^${MSH-9.2}` and its builders in dependency order. */
export type MappingRow = readonly [key: string, builders: readonly ResourceBuilder[]];
