/**
 * Hostile HL7 v2 text: an ordinary MSH followed by one shape repeated to a size, the inputs that once made the
 * parser build millions of objects (PID-5 of 15 MiB of `~`), block for seconds, or throw RangeError. Shared by the
 * parser's limit tests and bench/hl7-hostile.ts.
 */
import { randomBytes } from 'node:crypto';

export const HOSTILE_MSH = 'MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240815083015||ADT^A01^ADT_A01|HOSTILE-1|P|2.5.1\r';
const PID = 'PID|1||12345^^^HOSP^MR||';

/** What follows the MSH, given the size to fill (the text is cut to it). */
export const HOSTILE_SHAPES: Record<string, (size: number) => string> = {
  tilde: (size) => PID + '~'.repeat(size),
  caret: (size) => PID + '^'.repeat(size),
  ampersand: (size) => PID + '&'.repeat(size),
  pipe: (size) => PID + '|'.repeat(size),
  cr: (size) => PID + '\r'.repeat(size),
  'lf-continuations': (size) => PID + 'x\n'.repeat(size / 2),
  'short-segments': (size) => 'ZZ1|a\r'.repeat(Math.ceil(size / 6)),
  escapes: (size) => PID + '\\F\\'.repeat(Math.ceil(size / 3)),
  'hex-nul': (size) => PID + '\\X00\\'.repeat(Math.ceil(size / 5)),
  'random-bytes': (size) => PID + randomBytes(size).toString('latin1'),
  // One endless segment of random characters: every delimiter kind at random, no line to stop at.
  'random-one-line': (size) => PID + randomBytes(size).toString('latin1').replace(/[\r\n]/g, 'x'),
  'giant-field': (size) => `OBX|1|ED|PDF^Report||^AP^PDF^Base64^${'QUJD'.repeat(Math.ceil(size / 4))}|||||F`,
  'pid3-repetitions': (size) => `PID|1||${'12345^^^HOSP^MR~'.repeat(Math.ceil(size / 16))}||Doe^J`,
};

/** The MSH and one shape, `size` characters in all. */
export function hostileText(shape: string, size: number): string {
  return (HOSTILE_MSH + HOSTILE_SHAPES[shape]!(size)).slice(0, size);
}
