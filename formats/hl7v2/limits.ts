/**
 * How much structure one HL7 v2 message may have. The frame cap (mllp.maxFrameBytes, http.bodyLimitBytes) bounds the
 * bytes, not what they expand to: every delimiter makes a value, and a field of 15 MiB of `~` would make five million
 * repetitions, each an array holding an array holding a string, which no worker heap survives. These caps bound the
 * parsed tree. The parser checks them while it scans (parse.ts), so a message over a cap costs the scan up to the
 * point where it went over, never the tree; the intake runs the same scan without building anything
 * (checkHl7Limits) and refuses the message with ANCHORLINE_ERR_HL7_TOO_COMPLEX before it acknowledges anything, so
 * a message the intake accepted never exceeds them in the worker (both read the config section `hl7v2`).
 *
 * The defaults are far above every real message we have seen: the public corpus (test/fixtures/corpus/hl7v2, ~460
 * messages of v2.1 to v2.8) peaks at 179 segments, 94 fields in a segment (a Z-segment), 17 repetitions, 26
 * components, 21 subcomponents (an OBX-5 embedding XML with unescaped `&`) and 14,620 parsed nodes.
 */
export interface Hl7Limits {
  /** Segments in one message, MSH included (blank lines are not segments). */
  maxSegments: number;
  /** The highest field number in one segment (fields past the last delimiter are not counted). */
  maxFieldsPerSegment: number;
  /** Repetitions of one field. */
  maxRepetitionsPerField: number;
  /** Components of one repetition. */
  maxComponentsPerRepetition: number;
  /** Subcomponents of one component. */
  maxSubcomponentsPerComponent: number;
  /**
   * Everything the parsed tree holds: one node per segment, field, repetition, component and value, and one per
   * line break kept inside a segment. A node costs about 30 to 60 bytes of heap, so this bounds the tree of any
   * message to tens of megabytes.
   */
  maxParsedNodes: number;
  /**
   * Messages in one batch (FHS/BHS ... BTS/FTS, or messages one after another in one frame or body). Each is received
   * as a message of its own; the cap bounds how long one batch holds its connection.
   */
  maxBatchMessages: number;
}

/**
 * Mirrors the defaults of config/schema.ts (section `hl7v2`), which a test keeps equal; the parser's callers without
 * a configuration (the mapping tester, benchmarks) get the same limits as the engine.
 */
export const DEFAULT_HL7_LIMITS: Readonly<Hl7Limits> = Object.freeze({
  // A cumulative lab report or a report sent one NTE per line runs to hundreds, rarely a couple of thousand.
  maxSegments: 10_000,
  // The widest standard segments (IN1, IN2, PV1, OBR) have 50 to 72 fields; Z-segments a few dozen.
  maxFieldsPerSegment: 500,
  // A report sent as one OBX-5 with a repetition per line is the longest repeating field real senders make.
  maxRepetitionsPerField: 10_000,
  // The widest data types (PPN, XCN, CWE) have 22 to 26 components; free text with unescaped `^` a few more.
  maxComponentsPerRepetition: 1_000,
  // Datatypes nest at most a handful; embedded XML or HTML sent with `&` unescaped makes one subcomponent per `&`.
  maxSubcomponentsPerComponent: 10_000,
  // 34 times the largest corpus message; at the cap the tree takes some 20 to 30 MB and parses in well under 100 ms.
  maxParsedNodes: 500_000,
  // A day's results of a busy laboratory in one file; ReportStream's public batches hold 1 to 20.
  maxBatchMessages: 10_000,
});
