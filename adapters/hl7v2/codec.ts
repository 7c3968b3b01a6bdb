/**
 * The HL7 v2 codec, pure functions with no I/O: MSH header read, charset decoding, parsing with unescaping, ACK
 * building and value escaping. The intake uses it at the door and the ingest worker to map; framing lives in
 * adapters/mllp, since HTTP intake has no frames.
 */
export { readMshHeader, type MshHeader } from './header.ts';
export { resolveCharset, decodeHl7Bytes, encodeHl7Text, type DecodedHl7 } from './charset.ts';
export { buildAck, encodeAck, isEnhancedMode, newAckControlId, type AckCode, type AckError, type AckOptions } from './ack.ts';
export { escapeHl7 } from './escape-text.ts';
export { parseHl7 } from './parse.ts';
export { unescapeHl7 } from './escape.ts';
