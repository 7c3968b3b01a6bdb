import { describe, expect, it } from 'vitest';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { readMshHeader, type MshHeader } from '../../formats/hl7v2/index.ts';

const STANDARD = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

interface HeaderCase {
  name: string;
  text: string;
  want?: Partial<MshHeader>;
  wantErr?: { code: ErrorCode; location: string };
}

const FULL =
  'MSH|^~\\&|EMR^SEOUL^L|SEOULHOSP|ANCHORLINE|HIE|20240315093000.123+0900||ADT^A01^ADT_A01|MSG00001|P^T|2.5.1^KOR^HL70399|||AL|NE|KOR|UNICODE UTF-8~8859/1\rEVN|A01\r';

const cases: HeaderCase[] = [
  {
    name: 'every field of a full v2.5.1 MSH',
    text: FULL,
    want: {
      encoding: STANDARD,
      sendingApplication: 'EMR^SEOUL^L',
      sendingFacility: 'SEOULHOSP',
      receivingApplication: 'ANCHORLINE',
      receivingFacility: 'HIE',
      messageDateTime: '20240315093000.123+0900',
      messageType: 'ADT',
      triggerEvent: 'A01',
      messageStructure: 'ADT_A01',
      controlId: 'MSG00001',
      processingId: 'P^T',
      versionId: '2.5.1',
      acceptAckType: 'AL',
      applicationAckType: 'NE',
      characterSet: 'UNICODE UTF-8',
    },
  },
  {
    name: 'short MSH: absent fields are empty strings',
    text: 'MSH|^~\\&|LAB|GENHOSP|||19990612083000||ADT^A01|V23-0001|P|2.3',
    want: {
      sendingApplication: 'LAB',
      receivingApplication: '',
      triggerEvent: 'A01',
      messageStructure: '',
      versionId: '2.3',
      acceptAckType: '',
      applicationAckType: '',
      characterSet: '',
    },
  },
  {
    name: 'leading CR/LF and BOM are skipped',
    text: '\ufeff\r\n\r\nMSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5\r',
    want: { controlId: 'C1', versionId: '2.5' },
  },
  {
    name: 'LF segment terminator',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5\nEVN|A01|x|y\n',
    want: { versionId: '2.5', characterSet: '' },
  },
  {
    name: 'CRLF segment terminator',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.4|||||USA|8859/1\r\nEVN|A01\r\n',
    want: { versionId: '2.4', characterSet: '8859/1' },
  },
  {
    name: 'ACK without trigger event',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ACK|C9|P|2.2\rMSA|AA|C1\r',
    want: { messageType: 'ACK', triggerEvent: '', messageStructure: '' },
  },
  {
    name: 'v2.7 truncation character in MSH-2',
    text: 'MSH|^~\\&#|A|B|C|D|20240101||ADT^A04^ADT_A01|C1|P|2.7\r',
    want: { encoding: { ...STANDARD, truncation: '#' }, triggerEvent: 'A04' },
  },
  {
    name: 'non-standard delimiters',
    text: 'MSH!@#$%!APP@ONE!FAC!!!20240101@S!!ORU@R01@ORU_R01!C-1!T!2.6@X!!!AL!!!UTF-8#ASCII\r',
    want: {
      encoding: { field: '!', component: '@', repetition: '#', escape: '$', subcomponent: '%' },
      sendingApplication: 'APP@ONE',
      messageDateTime: '20240101',
      messageType: 'ORU',
      triggerEvent: 'R01',
      messageStructure: 'ORU_R01',
      versionId: '2.6',
      acceptAckType: 'AL',
      characterSet: 'UTF-8',
    },
  },
  {
    name: 'values are returned as sent, escapes included',
    text: 'MSH|^~\\&|A\\F\\B|F|R|RF|20240101||ADT^A01|ID\\T\\7|P|2.5\r',
    want: { sendingApplication: 'A\\F\\B', controlId: 'ID\\T\\7' },
  },
  {
    name: 'MSH-9 repetitions beyond the first are ignored',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ADT^A08~ADT^A01|C1|P|2.5\r',
    want: { messageType: 'ADT', triggerEvent: 'A08' },
  },
  { name: 'empty text', text: '', wantErr: { code: 'ANCHORLINE_ERR_HL7_NO_MSH', location: 'MSH' } },
  { name: 'first segment is PID', text: 'PID|1||123\r', wantErr: { code: 'ANCHORLINE_ERR_HL7_NO_MSH', location: 'MSH' } },
  { name: 'leading space', text: ' MSH|^~\\&|A', wantErr: { code: 'ANCHORLINE_ERR_HL7_NO_MSH', location: 'MSH' } },
  { name: 'lower-case msh', text: 'msh|^~\\&|A', wantErr: { code: 'ANCHORLINE_ERR_HL7_NO_MSH', location: 'MSH' } },
  { name: 'MSH and nothing else', text: 'MSH', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-1' } },
  { name: 'MSH then CR', text: 'MSH\rPID|1', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-1' } },
  { name: 'letter as field separator', text: 'MSHA^~\\&A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-1' } },
  { name: 'digit as field separator', text: 'MSH1^~\\&1', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-1' } },
  { name: 'space as field separator', text: 'MSH ^~\\& A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-1' } },
  { name: 'non-ASCII field separator', text: 'MSH§^~\\&§A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-1' } },
  { name: 'three encoding characters', text: 'MSH|^~\\|A|B', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' } },
  { name: 'six encoding characters', text: 'MSH|^~\\&#*|A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' } },
  { name: 'repeated encoding character', text: 'MSH|^^\\&|A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' } },
  { name: 'alphanumeric encoding character', text: 'MSH|^~\\A|A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' } },
  { name: 'no encoding characters', text: 'MSH||A|B', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' } },
  { name: 'tab among encoding characters', text: 'MSH|^~\t&|A', wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' } },
  {
    name: 'MSH-2 cut short by the segment end',
    text: 'MSH|^~\r\\&|A',
    wantErr: { code: 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', location: 'MSH-2' },
  },
  {
    name: 'nothing after the encoding characters',
    text: 'MSH|^~\\&',
    wantErr: { code: 'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', location: 'MSH-9' },
  },
  {
    name: 'MSH-9 empty',
    text: 'MSH|^~\\&|A|B|C|D|20240101|||C1|P|2.5\r',
    wantErr: { code: 'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', location: 'MSH-9' },
  },
  {
    name: 'MSH-9.1 empty with a trigger',
    text: 'MSH|^~\\&|A|B|C|D|20240101||^A01|C1|P|2.5\r',
    wantErr: { code: 'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', location: 'MSH-9' },
  },
  {
    name: 'MSH-9 on a later segment does not count',
    text: 'MSH|^~\\&|A|B|C|D\rEVN|A|B|C|D|E|F|G|ADT^A01|C1\r',
    wantErr: { code: 'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', location: 'MSH-9' },
  },
  {
    // Required, but left out by some senders and many test messages: read as empty, and the intake keys the message
    // by its content (contentControlId).
    name: 'MSH-10 empty',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5\r',
    want: { controlId: '', messageType: 'ADT', processingId: 'P', versionId: '2.5' },
  },
  {
    name: 'MSH-10 blank',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|   |P|2.5\r',
    want: { controlId: '', processingId: 'P' },
  },
  {
    name: 'MSH ends before MSH-10',
    text: 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01\rEVN|A01\r',
    want: { controlId: '', messageType: 'ADT', triggerEvent: 'A01' },
  },
];

describe('readMshHeader', () => {
  it.each(cases)('$name', ({ text, want, wantErr }) => {
    if (wantErr !== undefined) {
      let thrown: unknown;
      try {
        readMshHeader(text);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(AnchorlineError);
      expect((thrown as AnchorlineError).code).toBe(wantErr.code);
      expect((thrown as AnchorlineError).location).toBe(wantErr.location);
      return;
    }
    expect(readMshHeader(text)).toMatchObject(want ?? {});
  });

  it('never puts field values into error details', () => {
    const secret = 'HONG^GILDONG';
    const texts = [
      `MSH|^~\\&|${secret}|B|C|D|20240101|||C1|P|2.5\r`,
      `MSH|${secret}|B|C|D|20240101||ADT^A01|C1|P|2.5\r`,
      `PID|${secret}\r`,
    ];
    for (const text of texts) {
      expect(() => readMshHeader(text)).toThrow(AnchorlineError);
      try {
        readMshHeader(text);
      } catch (error) {
        expect(String((error as AnchorlineError).detail)).not.toContain('HONG');
      }
    }
  });

  it('reads only the first segment of a large message quickly', () => {
    const body = 'OBX|1|TX|||' + 'x'.repeat(5_000_000) + '\r';
    const text = 'MSH|^~\\&|A|B|C|D|20240101||ORU^R01|C1|P|2.5.1\r' + body;
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) readMshHeader(text);
    // 10,000 reads of a 5 MB message: only possible if the body is never scanned.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
