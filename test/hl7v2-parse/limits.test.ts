/**
 * The parser's caps (formats/hl7v2/limits.ts): each one refuses a message one past it with
 * ANCHORLINE_ERR_HL7_TOO_COMPLEX and accepts one at it; checkHl7Limits (the intake's count) agrees with parseHl7 on
 * every input; 16 MiB of hostile text is parsed or refused quickly with a coded error; NUL never comes out.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../config/load.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { checkHl7Limits, parseHl7 } from '../../formats/hl7v2/parse.ts';
import { DEFAULT_HL7_LIMITS, type Hl7Limits } from '../../formats/hl7v2/limits.ts';
import { valueOf } from '../../formats/hl7v2/types.ts';
import { HOSTILE_SHAPES, hostileText } from '../support/hl7v2-hostile.ts';

const MSH = 'MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240815083015||ADT^A01^ADT_A01|CTRL1|P|2.5.1';
const SMALL: Hl7Limits = { maxSegments: 4, maxFieldsPerSegment: 6, maxRepetitionsPerField: 3, maxComponentsPerRepetition: 4, maxSubcomponentsPerComponent: 2, maxParsedNodes: 200, maxBatchMessages: 2 };
// MSH alone has 12 fields; the field cap applies to it too, so the small limits are checked on segments after it.
const WIDE_MSH: Hl7Limits = { ...SMALL, maxFieldsPerSegment: 20 };

/** The code parseHl7 throws for `text`, or 'ok'; and the same for checkHl7Limits, which must agree on the caps. */
function outcomes(text: string, limits: Hl7Limits): { parse: string; check: string; parseError?: AnchorlineError } {
  let parse = 'ok';
  let parseError: AnchorlineError | undefined;
  try {
    parseHl7(text, limits);
  } catch (error) {
    if (!(error instanceof AnchorlineError)) throw error;
    parse = error.code;
    parseError = error;
  }
  let check = 'ok';
  try {
    checkHl7Limits(text, limits);
  } catch (error) {
    if (!(error instanceof AnchorlineError)) throw error;
    check = error.code;
  }
  return { parse, check, ...(parseError ? { parseError } : {}) };
}

interface CapCase {
  name: string;
  at: string;
  over: string;
  key: keyof Hl7Limits;
  location: string;
}

const capCases: CapCase[] = [
  { name: 'segments', at: `${MSH}\rEVN|A01\rPID|1\rPV1|1`, over: `${MSH}\rEVN|A01\rPID|1\rPV1|1\rOBX|1`, key: 'maxSegments', location: 'OBX' },
  { name: 'fields', at: `${MSH}\rPID|1|2|3|4|5|6`, over: `${MSH}\rPID|1|2|3|4|5|6|7`, key: 'maxFieldsPerSegment', location: 'PID' },
  { name: 'repetitions', at: `${MSH}\rPID|1||a~b~c`, over: `${MSH}\rPID|1||a~b~c~d`, key: 'maxRepetitionsPerField', location: 'PID-3' },
  { name: 'components', at: `${MSH}\rPID|1||a^b^c^d`, over: `${MSH}\rPID|1||a^b^c^d^e`, key: 'maxComponentsPerRepetition', location: 'PID-3' },
  { name: 'subcomponents', at: `${MSH}\rPID|1||a^b&c`, over: `${MSH}\rPID|1||a^b&c&d`, key: 'maxSubcomponentsPerComponent', location: 'PID-3' },
];

describe('HL7 v2 parse limits', () => {
  for (const c of capCases) {
    it(`accepts a message at the ${c.name} cap and refuses one past it`, () => {
      const limits = c.key === 'maxFieldsPerSegment' ? SMALL : WIDE_MSH;
      const fieldLimits = c.key === 'maxFieldsPerSegment' ? { ...SMALL, maxFieldsPerSegment: 12 } : limits;
      // At the cap: both parse and count accept.
      expect(outcomes(c.at, fieldLimits)).toEqual({ parse: 'ok', check: 'ok' });
      const over = c.key === 'maxFieldsPerSegment' ? `${MSH}\rPID|1|2|3|4|5|6|7|8|9|10|11|12|13` : c.over;
      const result = outcomes(over, fieldLimits);
      expect(result.parse).toBe('ANCHORLINE_ERR_HL7_TOO_COMPLEX');
      expect(result.check).toBe('ANCHORLINE_ERR_HL7_TOO_COMPLEX');
      // The detail names the config key and the place, never a value.
      expect(result.parseError!.detail).toContain(`hl7v2.${c.key}`);
      expect(result.parseError!.location).toBe(c.key === 'maxFieldsPerSegment' ? 'PID' : c.location);
      expect(result.parseError!.retryable).toBe(false);
    });
  }

  it('refuses a message past the parsed-node cap, counting fields, repetitions, components and values', () => {
    const limits: Hl7Limits = { ...DEFAULT_HL7_LIMITS, maxParsedNodes: 100 };
    const many = Array.from({ length: 30 }, (_, i) => `OBX|${i}|NM|A^B`).join('\r');
    expect(outcomes(`${MSH}\rPID|1`, limits)).toEqual({ parse: 'ok', check: 'ok' });
    const result = outcomes(`${MSH}\r${many}`, limits);
    expect([result.parse, result.check]).toEqual(['ANCHORLINE_ERR_HL7_TOO_COMPLEX', 'ANCHORLINE_ERR_HL7_TOO_COMPLEX']);
    expect(result.parseError!.detail).toContain('hl7v2.maxParsedNodes');
  });

  it('counts a segment sent across several lines once, and blank lines not at all', () => {
    const limits: Hl7Limits = { ...WIDE_MSH, maxSegments: 2 };
    expect(outcomes(`${MSH}\r\r\n  \rNTE|1||first line\nsecond line\nthird\r\r`, limits)).toEqual({ parse: 'ok', check: 'ok' });
    expect(outcomes(`${MSH}\rNTE|1\rNTE|2`, limits).parse).toBe('ANCHORLINE_ERR_HL7_TOO_COMPLEX');
  });

  it('counts only what parseHl7 would reach: a malformed segment before a cap is the parser\'s error, not the intake\'s', () => {
    const text = `${MSH}\rPID|1\r\r?? not a segment\rOBX|1||${'a~'.repeat(10)}`;
    expect(outcomes(text, WIDE_MSH)).toMatchObject({ parse: 'ANCHORLINE_ERR_HL7_MALFORMED', check: 'ok' });
  });

  it('has the config schema\'s defaults (section hl7v2)', () => {
    expect(parseConfig({}).hl7v2).toEqual(DEFAULT_HL7_LIMITS);
  });

  it('parses every message shape a real sender makes within the defaults', () => {
    const report = Array.from({ length: 2_000 }, (_, i) => `line ${i} of the report`).join('~');
    const message = parseHl7(`${MSH}\rPID|1||123^^^HOSP^MR\rOBR|1\rOBX|1|TX|RPT^Report||${report}||||||F`);
    expect(message.segments[3]!.fields[5]!.length).toBe(2_000);
  });

  describe('property: checkHl7Limits and parseHl7 agree, and throw nothing but AnchorlineError', () => {
    const piece = fc.oneof(
      fc.constantFrom('MSH|^~\\&|', '|', '^', '~', '&', '\\', '\r', '\n', '\r\n', 'PID|', 'OBX|', 'NTE|', ' ', '\\F\\', '\\X00\\', 'abc'),
      fc.string({ maxLength: 6 }),
    );
    const text = fc.array(piece, { maxLength: 80 }).map((parts) => `${MSH}\r${parts.join('')}`);
    const limits = fc.record({
      maxSegments: fc.integer({ min: 1, max: 8 }),
      maxFieldsPerSegment: fc.integer({ min: 12, max: 20 }),
      maxRepetitionsPerField: fc.integer({ min: 1, max: 5 }),
      maxComponentsPerRepetition: fc.integer({ min: 1, max: 5 }),
      maxSubcomponentsPerComponent: fc.integer({ min: 1, max: 5 }),
      maxParsedNodes: fc.integer({ min: 20, max: 200 }),
      maxBatchMessages: fc.constant(DEFAULT_HL7_LIMITS.maxBatchMessages),
    });

    it('the intake count refuses exactly what the parser refuses for a cap, with the same detail', () => {
      fc.assert(
        fc.property(text, limits, (input, caps) => {
          let parseError: AnchorlineError | undefined;
          try {
            parseHl7(input, caps);
          } catch (error) {
            if (!(error instanceof AnchorlineError)) throw error;
            parseError = error;
          }
          let checkError: AnchorlineError | undefined;
          try {
            checkHl7Limits(input, caps);
          } catch (error) {
            if (!(error instanceof AnchorlineError)) throw error;
            checkError = error;
          }
          const parseCap = parseError?.code === 'ANCHORLINE_ERR_HL7_TOO_COMPLEX' ? parseError.detail : undefined;
          expect(checkError?.detail).toBe(parseCap);
        }),
        { numRuns: 2_000 },
      );
    });

    it('any string at all returns a message or throws an AnchorlineError', () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), text), limits, (input, caps) => {
          for (const run of [() => parseHl7(input), () => parseHl7(input, caps), () => checkHl7Limits(input, caps)]) {
            try {
              run();
            } catch (error) {
              expect(error).toBeInstanceOf(AnchorlineError);
            }
          }
        }),
        { numRuns: 2_000 },
      );
    });

    it('no parsed value holds U+0000', () => {
      fc.assert(
        fc.property(text, (input) => {
          let message;
          try {
            message = parseHl7(input);
          } catch {
            return;
          }
          expect(JSON.stringify(message.segments)).not.toContain('\\u0000');
        }),
        { numRuns: 1_000 },
      );
    });
  });

  it('removes NUL sent as \\X00\\ or raw, keeps the rest of the value, and says where', () => {
    const message = parseHl7(`${MSH}\rPID|1||123^^^HOSP^MR||Do\\X00\\e^Ja\u0000ne\rOBX|1|CWE|GLU\\X0000\\^Glucose^LN||Diab\\X00E9\\tico`);
    expect(valueOf(message.segments[1], 5, 1)).toBe('Doe');
    expect(valueOf(message.segments[1], 5, 2)).toBe('Jane');
    expect(valueOf(message.segments[2], 3, 1)).toBe('GLU');
    // 16-bit code units written high byte first are characters, not a NUL and a character.
    expect(valueOf(message.segments[2], 5, 1)).toBe('Diab\u00e9tico');
    expect(message.removedNul).toEqual([{ segment: 1, field: 5 }, { segment: 2, field: 3 }]);
    expect(parseHl7(`${MSH}\rPID|1||123`).removedNul).toBeUndefined();
  });

  describe('16 MiB of hostile text, default limits', () => {
    const size = 16 * 1024 * 1024;
    for (const shape of Object.keys(HOSTILE_SHAPES)) {
      it(`${shape}: parsed or refused with a coded error, quickly`, () => {
        const text = hostileText(shape, size);
        for (const run of [() => checkHl7Limits(text), () => parseHl7(text)]) {
          const started = performance.now();
          try {
            run();
          } catch (error) {
            expect(error).toBeInstanceOf(AnchorlineError);
          }
          // Generous for a loaded 2-core machine: bench/hl7-hostile.ts measures well under a second for each.
          expect(performance.now() - started).toBeLessThan(8_000);
        }
      });
    }

    it('refuses the shapes that once exhausted the heap, at the intake count already', () => {
      for (const shape of ['tilde', 'caret', 'ampersand', 'pipe', 'short-segments', 'pid3-repetitions']) {
        expect(() => checkHl7Limits(hostileText(shape, size)), shape).toThrow(expect.objectContaining({ code: 'ANCHORLINE_ERR_HL7_TOO_COMPLEX' }));
      }
    });
  });
});

describe('line breaks inside a segment', () => {
  const head = 'MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5\rPID|1||M1^^^H^MR\rOBX|1|ED|PDF||^AP^PDF^Base64^';

  it('count as parsed nodes, so millions of one-character lines are refused early', () => {
    const text = head + 'x\n'.repeat(2_000_000);
    for (const scan of [checkHl7Limits, parseHl7]) {
      try {
        scan(text);
        expect.unreachable('over the cap');
      } catch (error) {
        expect((error as AnchorlineError).code).toBe('ANCHORLINE_ERR_HL7_TOO_COMPLEX');
        expect((error as AnchorlineError).detail).toContain('line breaks');
      }
    }
  });

  it('leave base64 wrapped at 76 columns, 16 MiB of it, far below the cap', () => {
    const line = 'QUJD'.repeat(19);
    const text = head + `${line}\n`.repeat(Math.floor((16 * 1024 * 1024) / 77)) + '|||||F';
    expect(() => checkHl7Limits(text)).not.toThrow();
    const obx = parseHl7(text).segments[2]!;
    expect(obx.name).toBe('OBX');
  });
});
