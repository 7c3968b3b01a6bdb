/**
 * The parsed shape of an HL7 v2 message, shared by the intake, the ingest worker and the mappers.
 *
 * Values are already unescaped (\F\, \S\, \T\, \R\, \E\, \X..\ and friends are decoded), so a mapper never sees
 * delimiter escapes. The HL7 explicit null (a field sent as `""`) is kept as the string HL7_NULL so that a mapper can
 * tell "clear this element" (HL7_NULL) from "not sent" (empty string).
 */

export const HL7_NULL = '""';

export interface Hl7Encoding {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** HL7 2.7+ truncation character (fifth MSH-2 character), when sent. */
  truncation?: string;
}

/** Subcomponents of one component; a component without subcomponents is a one-element array. */
export type Hl7Component = string[];
/** Components of one repetition. */
export type Hl7Repetition = Hl7Component[];
/** Repetitions of one field. */
export type Hl7Field = Hl7Repetition[];

export interface Hl7Segment {
  name: string;
  /**
   * fields[n] is field n in HL7 numbering (fields[0] is unused and empty). For MSH, fields[1] is the field separator
   * and fields[2] the encoding characters, each as a single literal value, so MSH-9 is fields[9] as for any segment.
   */
  fields: Hl7Field[];
}

export interface Hl7Message {
  encoding: Hl7Encoding;
  segments: Hl7Segment[];
  /**
   * Indexes (in `segments`) of segments sent across several lines: a line break inside a field, read as part of the
   * value (parse.ts). Absent when there is none.
   */
  brokenSegments?: number[];
  /**
   * Fields (segment index in `segments`, field number) that held U+0000, sent as a hex escape (\X00\): it was
   * removed from their values (parse.ts), since stored text cannot hold it. Absent when there is none.
   */
  removedNul?: Array<{ segment: number; field: number }>;
}

/** All segments with this name, in message order. */
export function segmentsNamed(message: Hl7Message, name: string): Hl7Segment[] {
  return message.segments.filter((s) => s.name === name);
}

/** The first segment with this name, if any. */
export function firstSegment(message: Hl7Message, name: string): Hl7Segment | undefined {
  return message.segments.find((s) => s.name === name);
}

/** One field's repetitions ([] when absent). */
export function fieldOf(segment: Hl7Segment | undefined, field: number): Hl7Field {
  return segment?.fields[field] ?? [];
}

/**
 * One value: field `field`, repetition `repetition` (0-based), component `component` (1-based) and subcomponent
 * `subcomponent` (1-based). Returns '' when any part is absent.
 */
export function valueOf(
  segment: Hl7Segment | undefined,
  field: number,
  component = 1,
  subcomponent = 1,
  repetition = 0,
): string {
  return segment?.fields[field]?.[repetition]?.[component - 1]?.[subcomponent - 1] ?? '';
}

/** One component's value within a repetition (1-based component, first subcomponent). */
export function componentOf(repetition: Hl7Repetition | undefined, component: number, subcomponent = 1): string {
  return repetition?.[component - 1]?.[subcomponent - 1] ?? '';
}

/** True when the field was sent as the HL7 explicit null `""`. */
export function isExplicitNull(field: Hl7Field): boolean {
  return field.length === 1 && field[0]!.length === 1 && field[0]![0]!.length === 1 && field[0]![0]![0] === HL7_NULL;
}

/** True when the field carries no value at all (not sent, or every part empty). */
export function isEmptyField(field: Hl7Field): boolean {
  return field.every((rep) => rep.every((comp) => comp.every((sub) => sub === '')));
}
