import { describe, expect, it } from 'vitest';

import { readMshHeader } from '../../formats/hl7v2/header.ts';
import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { HL7_NULL, type Hl7Field, type Hl7Message, isExplicitNull, valueOf } from '../../formats/hl7v2/types.ts';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';

const MSH = 'MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240815083015||ADT^A01^ADT_A01|CTRL1|P|2.5.1';

interface Case {
  name: string;
  text: string;
  /** Expected fields: [segment index, field number, field]. */
  want?: Array<[number, number, Hl7Field]>;
  /** Expected segment names, in order. */
  segments?: string[];
  wantErr?: ErrorCode;
}

const cases: Case[] = [
  {
    name: 'CR-separated segments with components',
    text: `${MSH}\rPID|1||123^^^HOSP^MR`,
    segments: ['MSH', 'PID'],
    want: [
      [1, 1, [[['1']]]],
      [1, 2, []],
      [1, 3, [[['123'], [''], [''], ['HOSP'], ['MR']]]],
    ],
  },
  {
    name: 'LF-separated segments',
    text: `${MSH}\nEVN|A01\nPID|1`,
    segments: ['MSH', 'EVN', 'PID'],
    want: [[1, 1, [[['A01']]]]],
  },
  {
    name: 'CRLF-separated segments, blank lines and a trailing terminator are ignored',
    text: `${MSH}\r\n\r\nEVN|A01\r\n  \r\nPID|1\r\n\r\n`,
    segments: ['MSH', 'EVN', 'PID'],
  },
  { name: 'mixed separators', text: `${MSH}\rEVN|A01\nPID|1\r\nPV1|1\r`, segments: ['MSH', 'EVN', 'PID', 'PV1'] },
  { name: 'a leading byte order mark is dropped', text: `\ufeff${MSH}\rPID|1`, segments: ['MSH', 'PID'] },
  {
    name: 'MSH-1 and MSH-2 are literal fields and MSH-9 is fields[9]',
    text: MSH,
    want: [
      [0, 0, []],
      [0, 1, [[['|']]]],
      [0, 2, [[['^~\\&']]]],
      [0, 3, [[['SENDAPP']]]],
      [0, 9, [[['ADT'], ['A01'], ['ADT_A01']]]],
      [0, 12, [[['2.5.1']]]],
    ],
  },
  {
    name: 'repetitions',
    text: `${MSH}\rPID|1||A1^^^H1^MR~B2^^^H2^PI~`,
    want: [
      [
        1,
        3,
        [
          [['A1'], [''], [''], ['H1'], ['MR']],
          [['B2'], [''], [''], ['H2'], ['PI']],
          [['']],
        ],
      ],
    ],
  },
  {
    name: 'subcomponents',
    text: `${MSH}\rPID|1||123^^^HOSP&2.16.840.1.113883&ISO^MR`,
    want: [[1, 3, [[['123'], [''], [''], ['HOSP', '2.16.840.1.113883', 'ISO'], ['MR']]]]],
  },
  {
    name: 'HL7 explicit null is kept as HL7_NULL; empty fields are []',
    text: `${MSH}\rPID|1||""|""^x||`,
    want: [
      [1, 3, [[[HL7_NULL]]]],
      [1, 4, [[[HL7_NULL], ['x']]]],
      [1, 5, []],
      [1, 6, []],
    ],
  },
  { name: 'a segment with no fields', text: `${MSH}\rZPI`, want: [[1, 0, []]], segments: ['MSH', 'ZPI'] },
  { name: 'Z-segments and digits in names', text: `${MSH}\rZPI|1\rZ01|2`, segments: ['MSH', 'ZPI', 'Z01'] },
  {
    name: 'other delimiters declared in MSH-2',
    text: 'MSH#*@!%#APP#FAC#####ADT*A01\rPID#1##A1*X%Y@B2',
    want: [
      [0, 1, [[['#']]]],
      [0, 2, [[['*@!%']]]],
      [0, 9, [[['ADT'], ['A01']]]],
      [1, 3, [[['A1'], ['X', 'Y']], [['B2']]]],
    ],
  },
  // Escape sequences
  { name: 'delimiter escapes', text: `${MSH}\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f`, want: [[1, 3, [[['a|b^c&d~e\\f']]]]] },
  { name: 'escaped delimiters do not split', text: `${MSH}\rPID|1||x\\S\\y^z`, want: [[1, 3, [[['x^y'], ['z']]]]] },
  { name: 'truncation escape with a declared truncation character', text: 'MSH|^~\\&#|A\rNTE|1||ab\\P\\', want: [[1, 3, [[['ab#']]]]] },
  { name: 'truncation escape without one decodes to #', text: `${MSH}\rNTE|1||ab\\P\\`, want: [[1, 3, [[['ab#']]]]] },
  { name: 'hex escape, ASCII', text: `${MSH}\rNTE|1||\\X4142\\C`, want: [[1, 3, [[['ABC']]]]] },
  { name: 'hex escape, valid UTF-8 is read as UTF-8', text: `${MSH}\rNTE|1||caf\\XC3A9\\ \\XED998D\\`, want: [[1, 3, [[['café 홍']]]]] },
  { name: 'hex escape, other bytes are read as Latin-1', text: `${MSH}\rNTE|1||caf\\XE9\\`, want: [[1, 3, [[['café']]]]] },
  { name: 'hex escape with delimiters decodes to data', text: `${MSH}\rNTE|1||a\\X7C5E\\b`, want: [[1, 3, [[['a|^b']]]]] },
  { name: 'hex escape with an odd digit count is kept literally', text: `${MSH}\rNTE|1||\\X414\\`, want: [[1, 3, [[['\\X414\\']]]]] },
  { name: 'hex escape with non-hex digits is kept literally', text: `${MSH}\rNTE|1||\\XZZ\\`, want: [[1, 3, [[['\\XZZ\\']]]]] },
  { name: 'line breaks', text: `${MSH}\rNTE|1||one\\.br\\two\\.sp\\three\\.sp2\\four`, want: [[1, 3, [[['one\ntwo\nthree\nfour']]]]] },
  {
    name: 'formatting commands are removed',
    text: `${MSH}\rNTE|1||\\H\\bold\\N\\ \\.in+4\\\\.ti-2\\\\.sk3\\\\.ce\\x\\.fi\\\\.nf\\`,
    want: [[1, 3, [[['bold x']]]]],
  },
  { name: 'locally defined escapes are removed', text: `${MSH}\rNTE|1||a\\Zabc\\b`, want: [[1, 3, [[['ab']]]]] },
  { name: 'charset switches are removed', text: `${MSH}\rNTE|1||a\\C2842\\b\\M2442\\c`, want: [[1, 3, [[['abc']]]]] },
  { name: 'an unterminated escape is kept literally', text: `${MSH}\rNTE|1||abc\\F`, want: [[1, 3, [[['abc\\F']]]]] },
  { name: 'an unknown escape is kept literally', text: `${MSH}\rNTE|1||a\\Q\\b\\F\\c`, want: [[1, 3, [[['a\\Q\\b|c']]]]] },
  { name: 'escapes in subcomponents', text: `${MSH}\rPID|1||x^^^A\\T\\B&1.2&ISO`, want: [[1, 3, [[['x'], [''], [''], ['A&B', '1.2', 'ISO']]]]] },
  { name: 'free text broken onto its own line continues its segment', text: `${MSH}\rNTE|1||first line\nsecond line\rNTE|2||x`, segments: ['MSH', 'NTE', 'NTE'], want: [[1, 3, [[['first line\nsecond line']]]], [2, 3, [[['x']]]]] },
  { name: 'base64 wrapped over lines in an LF message continues its segment', text: `${MSH}\nOBX|1|ED|X||^AP^PDF^Base64^QUJD\nREVG\nOBX|2|ST|Y||ok`, segments: ['MSH', 'OBX', 'OBX'], want: [[1, 5, [[[''], ['AP'], ['PDF'], ['Base64'], ['QUJD\nREVG']]]]] },
  { name: 'MSH-2 is not unescaped', text: 'MSH|^~\\&|A\\F\\B', want: [[0, 2, [[['^~\\&']]]], [0, 3, [[['A|B']]]]] },
  // wantErr
  { name: 'empty text', text: '', wantErr: 'ANCHORLINE_ERR_HL7_NO_MSH' },
  { name: 'only line breaks', text: '\r\n\r\n', wantErr: 'ANCHORLINE_ERR_HL7_NO_MSH' },
  { name: 'first segment is not MSH', text: `EVN|A01\r${MSH}`, wantErr: 'ANCHORLINE_ERR_HL7_NO_MSH' },
  { name: 'MSH without delimiters', text: 'MSH', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'alphanumeric field separator', text: 'MSHA^~\\&A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'three encoding characters', text: 'MSH|^~\\|A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'six encoding characters', text: 'MSH|^~\\&#!|A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'duplicate encoding characters', text: 'MSH|^^\\&|A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'a doubled encoding character other than the escape', text: 'MSH|^^~\\&|A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'space as an encoding character', text: 'MSH|^~ &|A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'letter as an encoding character', text: 'MSH|^~\\a|A', wantErr: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS' },
  { name: 'lower-case segment name', text: `${MSH}\rpid|1`, wantErr: 'ANCHORLINE_ERR_HL7_MALFORMED' },
  { name: 'four-character segment name', text: `${MSH}\rPIDX|1`, wantErr: 'ANCHORLINE_ERR_HL7_MALFORMED' },
  { name: 'two-character segment name', text: `${MSH}\rPI|1`, wantErr: 'ANCHORLINE_ERR_HL7_MALFORMED' },

  { name: 'a second MSH', text: `${MSH}\rPID|1\r${MSH}`, wantErr: 'ANCHORLINE_ERR_HL7_MALFORMED' },
];

function fieldAt(message: Hl7Message, segment: number, field: number): Hl7Field | undefined {
  return message.segments[segment]?.fields[field];
}

describe('parseHl7', () => {
  for (const c of cases) {
    it(c.name, () => {
      if (c.wantErr !== undefined) {
        let thrown: unknown;
        try {
          parseHl7(c.text);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(AnchorlineError);
        expect((thrown as AnchorlineError).code).toBe(c.wantErr);
        return;
      }
      const message = parseHl7(c.text);
      if (c.segments !== undefined) expect(message.segments.map((s) => s.name)).toEqual(c.segments);
      for (const [segment, field, want] of c.want ?? []) {
        expect(fieldAt(message, segment, field), `segment ${segment} field ${field}`).toEqual(want);
      }
    });
  }

  it('reads the encoding characters, with the truncation character when sent', () => {
    expect(parseHl7(MSH).encoding).toEqual({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' });
    expect(parseHl7('MSH|^~\\&#|A').encoding).toEqual({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: '#' });
  });

  it('reads MSH-2 sent with its escape character doubled (^~\\\\&) as ^~\\&, in the parser and the header reader', () => {
    const text = 'MSH|^~\\\\&|APP|FAC|||20260401||ADT^A01|C1|P|2.6\rPID|1||X\\T\\Y^^^H||Doe^Jo';
    const message = parseHl7(text);
    expect(message.encoding).toEqual({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' });
    expect(fieldAt(message, 0, 3)).toEqual([[['APP']]]);
    expect(fieldAt(message, 1, 3)).toEqual([[['X&Y'], [''], [''], ['H']]]);
    const header = readMshHeader(text);
    expect([header.sendingApplication, header.messageType, header.controlId]).toEqual(['APP', 'ADT', 'C1']);
    expect(header.encoding.escape).toBe('\\');
  });

  it('names the segments sent across several lines', () => {
    expect(parseHl7(`${MSH}\rPID|1\rNTE|1||a\nb\nc\rNTE|2||d`).brokenSegments).toEqual([2]);
    expect(parseHl7(`${MSH}\rPID|1\rNTE|1||a`).brokenSegments).toBeUndefined();
  });

  it('keeps the explicit null distinguishable from an empty field', () => {
    const pid = parseHl7(`${MSH}\rPID|1||""||`).segments[1]!;
    expect(isExplicitNull(pid.fields[3]!)).toBe(true);
    expect(isExplicitNull(pid.fields[4]!)).toBe(false);
    expect(valueOf(pid, 4)).toBe('');
  });

  it('error details never echo message content', () => {
    const secret = 'HONG GILDONG 880101-1234567';
    for (const text of [`${MSH}\r${secret}`, `${secret}\r${MSH}`, `MSH|^~\\a|${secret}`]) {
      try {
        parseHl7(text);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(AnchorlineError);
        expect(String((error as AnchorlineError).message)).not.toContain('HONG');
        expect(String((error as AnchorlineError).detail)).not.toContain('1234567');
      }
    }
  });
});
