import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AnchorlineError, ERROR_CATALOGUE, ackCodeFor, type ErrorCode } from '../../errors/index.ts';
import {
  buildAck,
  decodeHl7Bytes,
  isEnhancedMode,
  readMshHeader,
  type AckCode,
  type AckError,
  type MshHeader,
} from '../../formats/hl7v2/index.ts';

const FIXTURES = new URL('../fixtures/hl7v2-bytes/', import.meta.url);

interface AckCase {
  name: string;
  fixture?: string;
  message?: string;
  options: {
    ackCode: AckCode;
    ackControlId: string;
    timestamp: string;
    timeZone: string;
    error?: AckError;
    engineApplication?: string;
  };
  expected: string[];
}
const ackCases = (JSON.parse(readFileSync(new URL('ack-cases.json', FIXTURES), 'utf8')) as { cases: AckCase[] }).cases;

function headerFor(c: AckCase): MshHeader | undefined {
  if (c.fixture !== undefined) return decodeHl7Bytes(readFileSync(new URL(c.fixture, FIXTURES))).header;
  if (c.message !== undefined) return readMshHeader(c.message);
  return undefined;
}

const SEOUL_HEADER = readMshHeader(
  'MSH|^~\\&|EMR|SEOULHOSP|ANCHORLINE|HIE|20240315093000||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r',
);
const V24_HEADER = readMshHeader('MSH|^~\\&|EMR|SEOULHOSP|ANCHORLINE|HIE|20240315093000||ADT^A01|MSG00001|P|2.4\r');
const FIXED = new Date('2024-03-15T00:30:00.123Z');

function ackSegments(header: MshHeader | undefined, extra: Partial<Parameters<typeof buildAck>[0]> = {}): string[] {
  const ack = buildAck({ header, ackCode: 'AA', ackControlId: 'A1', timestamp: FIXED, timeZone: 'UTC', ...extra });
  expect(ack.endsWith('\r')).toBe(true);
  return ack.slice(0, -1).split('\r');
}

describe('buildAck expected outputs', () => {
  it.each(ackCases)('$name', (c) => {
    const { timestamp, ...rest } = c.options;
    const ack = buildAck({ header: headerFor(c), ...rest, timestamp: new Date(timestamp) });
    expect(ack).toBe(c.expected.join('\r') + '\r');
  });
});

describe('buildAck MSH-7 time zone offsets', () => {
  it.each([
    ['2024-03-15T00:30:00.123Z', 'Asia/Seoul', '20240315093000.123+0900'],
    ['2024-03-14T15:00:00.000Z', 'Asia/Seoul', '20240315000000.000+0900'],
    ['2024-03-15T00:30:00.123Z', 'UTC', '20240315003000.123+0000'],
    ['2024-03-15T00:30:00.999Z', 'Asia/Kolkata', '20240315060000.999+0530'],
    ['2024-01-10T15:04:05.006Z', 'America/New_York', '20240110100405.006-0500'],
    ['2024-07-04T16:00:00.000Z', 'America/New_York', '20240704120000.000-0400'],
    ['2024-07-04T16:00:00.000Z', 'America/St_Johns', '20240704133000.000-0230'],
    ['2024-12-31T23:59:59.999Z', 'Pacific/Kiritimati', '20250101135959.999+1400'],
    ['2024-03-31T00:59:59.000Z', 'Europe/Berlin', '20240331015959.000+0100'],
    ['2024-03-31T01:00:00.000Z', 'Europe/Berlin', '20240331030000.000+0200'],
  ])('%s in %s -> %s', (iso, timeZone, want) => {
    const [msh] = ackSegments(undefined, { timestamp: new Date(iso), timeZone });
    expect(msh?.split('|')[6]).toBe(want);
  });

  it('an unknown time zone is a configuration error', () => {
    expect(() => ackSegments(undefined, { timeZone: 'Mars/Olympus_Mons' })).toThrow(AnchorlineError);
    try {
      ackSegments(undefined, { timeZone: 'Mars/Olympus_Mons' });
    } catch (error) {
      expect((error as AnchorlineError).code).toBe('ANCHORLINE_ERR_CONFIG_INVALID');
    }
  });
});

describe('buildAck ERR locations', () => {
  it.each([
    ['MSH-10', 'MSH^1^10'],
    ['PID-3', 'PID^1^3'],
    ['PID-3.1', 'PID^1^3^1^1'],
    ['PID-3.1.2', 'PID^1^3^1^1^2'],
    ['PID-3[2]', 'PID^1^3^2'],
    ['PID-3[2].4', 'PID^1^3^2^4'],
    ['OBX[3]-5', 'OBX^3^5'],
    ['ZP1-2', 'ZP1^1^2'],
    ['PID', 'PID^1'],
    ['pid-3', ''],
    ['PID-x', ''],
    ['not a location', ''],
  ])('v2.5 ERR-2 for %s is %j', (location, want) => {
    const err = ackSegments(SEOUL_HEADER, { ackCode: 'AE', error: { code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location } })[2];
    expect(err?.split('|')[2]).toBe(want);
  });

  it.each([
    ['PID-3.1', 'PID^1^3^102&Data type error&HL70357'],
    ['OBX[2]-5', 'OBX^2^5^102&Data type error&HL70357'],
    [undefined, '^^^102&Data type error&HL70357'],
  ])('v2.4 ERR-1 for %s is %j', (location, want) => {
    const error = { code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE' as const, ...(location === undefined ? {} : { location }) };
    const segments = ackSegments(V24_HEADER, { ackCode: 'AE', error });
    expect(segments[2]).toBe(`ERR|${want}`);
  });

  it('every catalogue code yields a complete ERR-3 with the table 0357 text', () => {
    for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
      const err = ackSegments(SEOUL_HEADER, { ackCode: ackCodeFor(code, false), error: { code } })[2];
      const [condition, text, system] = (err?.split('|')[3] ?? '').split('^');
      expect(condition).toBe(ERROR_CATALOGUE[code].hl7Condition);
      expect(text).not.toBe('');
      expect(system).toBe('HL70357');
    }
  });
});

describe('buildAck echoes and escapes', () => {
  it('escapes the ACK control id and engine application, not the echoed header fields', () => {
    const header = readMshHeader('MSH|^~\\&|EMR^SEOUL^L|FAC^X|||20240101||ADT^A01|ID\\T\\1|P|2.5.1\r');
    const [msh, msa] = ackSegments(header, { ackControlId: 'A|1', engineApplication: 'ENGINE^KR' });
    expect(msh).toBe('MSH|^~\\&|ENGINE\\S\\KR||EMR^SEOUL^L|FAC^X|20240315003000.123+0000||ACK^A01^ACK|A\\F\\1|P|2.5.1');
    expect(msa).toBe('MSA|AA|ID\\T\\1');
  });

  it('a v2.7 truncation character is echoed in MSH-2', () => {
    const header = readMshHeader('MSH|^~\\&#|A|B|C|D|20240101||ADT^A04^ADT_A01|C1|P|2.7\r');
    expect(ackSegments(header)[0]).toBe('MSH|^~\\&#|C|D|A|B|20240315003000.123+0000||ACK^A04^ACK|A1|P|2.7');
  });

  it('v2.1/2.2 ACK without trigger event has a one-component MSH-9', () => {
    const header = readMshHeader('MSH|^~\\&|A|B|C|D|20240101||ADT|C1|P|2.2\r');
    expect(ackSegments(header)[0]?.split('|')[8]).toBe('ACK');
  });

  it('the ACK reads back as an ACK for the original message', () => {
    const ack = buildAck({
      header: SEOUL_HEADER,
      ackCode: 'AR',
      ackControlId: 'ACK-77',
      timestamp: FIXED,
      timeZone: 'Asia/Seoul',
      error: { code: 'ANCHORLINE_ERR_HL7_MALFORMED', location: 'PV1-2', detail: 'PV1-2 | has ^ delimiters & such\rand a CR' },
    });
    const header = readMshHeader(ack);
    expect(header).toMatchObject({
      sendingApplication: 'ANCHORLINE',
      sendingFacility: 'HIE',
      receivingApplication: 'EMR',
      receivingFacility: 'SEOULHOSP',
      messageType: 'ACK',
      triggerEvent: 'A01',
      messageStructure: 'ACK',
      controlId: 'ACK-77',
      versionId: '2.5.1',
    });
    const segments = ack.split('\r');
    expect(segments.map((s) => s.slice(0, 3))).toEqual(['MSH', 'MSA', 'ERR', '']);
    expect(segments[2]?.split('|')[8]).toBe('PV1-2 \\F\\ has \\S\\ delimiters \\T\\ such\\X0D\\and a CR');
  });
});

describe('isEnhancedMode', () => {
  const withAckTypes = (msh15: string, msh16: string): MshHeader =>
    readMshHeader(`MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5.1|||${msh15}|${msh16}\r`);
  it.each([
    ['', '', false],
    ['AL', '', true],
    ['', 'NE', true],
    ['AL', 'NE', true],
    ['NE', 'NE', true],
    ['""', '""', false],
    ['  ', '', false],
  ])('MSH-15 %j, MSH-16 %j -> %s', (msh15, msh16, want) => {
    expect(isEnhancedMode(withAckTypes(msh15, msh16))).toBe(want);
  });

  it('is false without a header', () => {
    expect(isEnhancedMode(undefined)).toBe(false);
  });

  it('the enhanced fixture asks for enhanced mode', () => {
    const { header } = decodeHl7Bytes(readFileSync(new URL('adt-a01-enhanced.hl7', FIXTURES)));
    expect(isEnhancedMode(header)).toBe(true);
  });
});
