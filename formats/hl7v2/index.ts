/**
 * HL7 v2, the grammar: bytes in, message models out, and back. Pure functions with no I/O and no knowledge of the
 * transport: MSH header reading, charset decoding by MSH-18, parsing with escape decoding, the parsed-message model
 * and its accessors, ACK building and encoding, value escaping. The intake reads headers and answers with ACKs through
 * it; the mappers read parsed messages. MLLP framing is a transport concern (adapters/mllp): HTTP intake has no frames.
 */
export { readMshHeader, type MshHeader } from './header.ts';
export { resolveCharset, decodeHl7Bytes, encodeHl7Text, type DecodedHl7 } from './charset.ts';
export { MAX_ACK_WARNINGS, buildAck, encodeAck, isEnhancedMode, newAckControlId, type AckCode, type AckError, type AckOptions, type AckWarning } from './ack.ts';
export { escapeHl7 } from './escape-text.ts';
export { batchMessages, buildBatchAck, declaredCountDiffers, holdsSeveralMessages, isBatchSegmentLine, isHl7Batch, splitHl7Batch, type BatchAckOptions, type Hl7Batch, type Hl7BatchGroup } from './batch.ts';
export { checkHl7Limits, parseHl7 } from './parse.ts';
export { DEFAULT_HL7_LIMITS, type Hl7Limits } from './limits.ts';
export { unescapeHl7 } from './escape.ts';
export {
  HL7_NULL,
  componentOf,
  fieldOf,
  firstSegment,
  isEmptyField,
  isExplicitNull,
  segmentsNamed,
  valueOf,
  type Hl7Component,
  type Hl7Encoding,
  type Hl7Field,
  type Hl7Message,
  type Hl7Repetition,
  type Hl7Segment,
} from './types.ts';
