/**
 * The byte-level HL7 v2 codec the MLLP listener and HTTP intake share: MSH header read, charset decoding, ACK building
 * and value escaping. Framing lives in adapters/mllp, since HTTP intake has no frames.
 */
export { readMshHeader, type MshHeader } from './header.ts';
export { resolveCharset, decodeHl7Bytes, encodeHl7Text, type DecodedHl7 } from './charset.ts';
export { buildAck, isEnhancedMode, type AckCode, type AckError, type AckOptions } from './ack.ts';
export { escapeHl7 } from './escape-text.ts';
