import { describe, expect, it } from 'vitest';

import type { Hl7Repetition } from '../../formats/hl7v2/types.ts';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';
import {
  toAddress,
  toCodeableConcept,
  toContactPoint,
  toFhirDate,
  toFhirDateTime,
  toHumanName,
  toIdentifier,
} from '../../mappers/hl7v2/datatypes.ts';
import { defaultHl7MappingOptions } from '../../mappers/index.ts';
import { MappingIssues, withIssues } from '../../mappers/issues.ts';

/** A repetition from `^`-separated components with `&`-separated subcomponents, as the parser would give it. */
function rep(text: string): Hl7Repetition {
  return text.split('^').map((component) => component.split('&'));
}

function codeOf(f: () => unknown): { code: ErrorCode; location: string | undefined } | undefined {
  try {
    f();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(AnchorlineError);
    return { code: (error as AnchorlineError).code, location: (error as AnchorlineError).location };
  }
}

describe('TS/DTM -> dateTime', () => {
  const cases: Array<[string, string, string | undefined]> = [
    // [HL7 value, zone, FHIR dateTime]
    ['2024', 'Asia/Seoul', '2024'],
    ['202408', 'Asia/Seoul', '2024-08'],
    ['20240815', 'Asia/Seoul', '2024-08-15'],
    ['20240815+0900', 'Asia/Seoul', '2024-08-15'],
    ['2024081508', 'Asia/Seoul', '2024-08-15T08:00:00+09:00'],
    ['202408150830', 'Asia/Seoul', '2024-08-15T08:30:00+09:00'],
    ['20240815083015', 'Asia/Seoul', '2024-08-15T08:30:15+09:00'],
    ['20240815083015.1234', 'Asia/Seoul', '2024-08-15T08:30:15.1234+09:00'],
    ['20240815083015-0500', 'Asia/Seoul', '2024-08-15T08:30:15-05:00'],
    ['20240815083015+0000', 'America/New_York', '2024-08-15T08:30:15+00:00'],
    ['20240815083015', 'UTC', '2024-08-15T08:30:15+00:00'],
    ['20240815083015', 'Asia/Kolkata', '2024-08-15T08:30:15+05:30'],
    [' 20240815 ', 'Asia/Seoul', '2024-08-15'],
    ['', 'Asia/Seoul', undefined],
    ['""', 'Asia/Seoul', undefined],
    ['00010101120000', 'UTC', '0001-01-01T12:00:00+00:00'],
  ];
  for (const [value, zone, want] of cases) {
    it(`${JSON.stringify(value)} in ${zone}`, () => expect(toFhirDateTime(value, 'PV1-44', zone)).toBe(want));
  }

  it('applies New York daylight time in summer and standard time in winter', () => {
    expect(toFhirDateTime('20240710143000', 'PV1-44', 'America/New_York')).toBe('2024-07-10T14:30:00-04:00');
    expect(toFhirDateTime('20240115103000', 'PV1-44', 'America/New_York')).toBe('2024-01-15T10:30:00-05:00');
  });

  it('changes offset exactly at the New York transitions', () => {
    // 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST.
    expect(toFhirDateTime('202403100159', 'X', 'America/New_York')).toBe('2024-03-10T01:59:00-05:00');
    expect(toFhirDateTime('202403100300', 'X', 'America/New_York')).toBe('2024-03-10T03:00:00-04:00');
    expect(toFhirDateTime('202411030059', 'X', 'America/New_York')).toBe('2024-11-03T00:59:00-04:00');
    expect(toFhirDateTime('202411030200', 'X', 'America/New_York')).toBe('2024-11-03T02:00:00-05:00');
  });

  it('reads a skipped local time with the offset before the change and a repeated one as the earlier instant', () => {
    expect(toFhirDateTime('202403100230', 'X', 'America/New_York')).toBe('2024-03-10T02:30:00-05:00');
    expect(toFhirDateTime('202411030130', 'X', 'America/New_York')).toBe('2024-11-03T01:30:00-04:00');
  });

  it('uses the offset in force at the time, not today', () => {
    // Korea observed daylight saving time in 1988.
    expect(toFhirDateTime('19880701120000', 'X', 'Asia/Seoul')).toBe('1988-07-01T12:00:00+10:00');
    expect(toFhirDateTime('19880101120000', 'X', 'Asia/Seoul')).toBe('1988-01-01T12:00:00+09:00');
  });

  const invalid = ['19881301', '19880230', '20230229', '2024081524', '202408152360', '20240815235960', '2024081512+1500', '2024081512+0960', '0000', '2024-08-15', '202408151', 'abc', '20240815.5'];
  for (const value of invalid) {
    it(`rejects ${JSON.stringify(value)}`, () => {
      expect(codeOf(() => toFhirDateTime(value, 'PID-7', 'Asia/Seoul'))).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location: 'PID-7' });
    });
  }

  describe('a value of digits longer than DTM, or cut between two of its parts', () => {
    const read = <T,>(convert: () => T): { value: T; issues: MappingIssues['list'] } => {
      const issues = new MappingIssues();
      const value = withIssues(issues, convert);
      return { value, issues: issues.list };
    };
    const cases: Array<[sent: string, want: string, detail: string]> = [
      // Public health test messages: a stray digit after the minute, hundredths without their dot, and more.
      ['2014121914001', '2014-12-19T14:00:00+09:00', '13 digits, which no HL7 date/time has (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); read to the minute, the last 1 left out'],
      ['2020051401000000', '2020-05-14T01:00:00+09:00', '16 digits, which no HL7 date/time has (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); read to the second, the last 2 left out'],
      ['2018080800000000000', '2018-08-08T00:00:00+09:00', '19 digits, which no HL7 date/time has (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); read to the second, the last 5 left out'],
      ['202408151', '2024-08-15', '9 digits, which no HL7 date/time has (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); read to the day, the last 1 left out'],
      // The offset sent is kept; a second out of range makes the minute the longest valid prefix.
      ['202408151230601-0500', '2024-08-15T12:30:00-05:00', '15 digits, which no HL7 date/time has (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); read to the minute, the last 3 left out'],
    ];
    for (const [sent, want, detail] of cases) {
      it(`reads ${sent} as ${want}, with a warning saying what was left out`, () => {
        const { value, issues } = read(() => toFhirDateTime(sent, 'OBR-7', 'Asia/Seoul'));
        expect(value).toBe(want);
        expect(issues).toEqual([{ severity: 'warning', code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location: 'OBR-7', detail: `OBR-7: ${detail}`, value: sent }]);
      });
    }

    it('takes a birth date from a long time, and reports it on each read', () => {
      const { value, issues } = read(() => [toFhirDate('2018080800000000000', 'PID-7'), toFhirDateTime('2014121914001', 'OBR-7', 'UTC'), toFhirDateTime('2014121914001', 'OBR-22', 'UTC')]);
      expect(value).toEqual(['2018-08-08', '2014-12-19T14:00:00+00:00', '2014-12-19T14:00:00+00:00']);
      expect(issues.map((issue) => issue.location)).toEqual(['PID-7', 'OBR-7', 'OBR-22']);
    });

    const refused = [
      // A digit added in front: the day itself does not read, and nothing says which digits to trust.
      '220241021055726',
      // Lengths DTM has, with a part out of range: wrong, not overlong.
      '2024081524',
      '20240815235960',
      // Not digits alone.
      '2024081512a',
    ];
    for (const sent of refused) {
      it(`still refuses ${sent}`, () => {
        const issues = new MappingIssues();
        expect(codeOf(() => withIssues(issues, () => toFhirDateTime(sent, 'OBR-7', 'UTC')))).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location: 'OBR-7' });
        expect(issues.list).toEqual([]);
      });
    }
  });

  it('accepts 29 February in a leap year', () => expect(toFhirDate('20240229', 'PID-7')).toBe('2024-02-29'));

  it('rejects an unknown time zone as a configuration error', () => {
    expect(codeOf(() => toFhirDateTime('20240815083015', 'PV1-44', 'Mars/Olympus'))?.code).toBe('ANCHORLINE_ERR_CONFIG_INVALID');
  });
});

describe('DT -> date', () => {
  it('keeps the precision sent and takes the sender\'s calendar date from a time', () => {
    expect(toFhirDate('1988', 'PID-7')).toBe('1988');
    expect(toFhirDate('198801', 'PID-7')).toBe('1988-01');
    expect(toFhirDate('19880101', 'PID-7')).toBe('1988-01-01');
    expect(toFhirDate('198801012330-0500', 'PID-7')).toBe('1988-01-01');
  });
});

describe('XPN -> HumanName', () => {
  it('maps the components', () => {
    expect(toHumanName(rep('KIM^MINSU^J^JR^DR^PHD^L'), 'PID-5', 'Asia/Seoul')).toEqual({
      use: 'official',
      family: 'KIM',
      given: ['MINSU', 'J'],
      prefix: ['DR'],
      suffix: ['JR', 'PHD'],
    });
  });

  const uses: Array<[string, string | undefined]> = [
    ['L', 'official'],
    ['D', 'usual'],
    ['M', 'maiden'],
    ['N', 'nickname'],
    ['S', 'anonymous'],
    ['TEMP', 'temp'],
    ['BAD', 'old'],
    ['A', undefined],
    ['U', undefined],
    ['', undefined],
  ];
  for (const [code, use] of uses) {
    it(`name type ${JSON.stringify(code)} -> ${String(use)}`, () => expect(toHumanName(rep(`X^Y^^^^^${code}`), 'PID-5', 'UTC')?.use).toBe(use));
  }

  it('a name type alone is no name', () => expect(toHumanName(rep('^^^^^^L'), 'PID-5', 'UTC')).toBeUndefined());
  it('HL7 null components are empty', () => expect(toHumanName(rep('""^MINSU'), 'PID-5', 'UTC')).toEqual({ given: ['MINSU'] }));
});

describe('XAD -> Address', () => {
  it('maps a Korean address', () => {
    expect(toAddress(rep('세종대로 110^^중구^서울특별시^04524^KOR^H'), 'PID-11', 'Asia/Seoul')).toEqual({
      use: 'home',
      line: ['세종대로 110'],
      city: '중구',
      state: '서울특별시',
      postalCode: '04524',
      country: 'KOR',
    });
  });
  it('builds the line from street name and dwelling number when 1.1 is empty', () => {
    expect(toAddress(rep('&Teheran-ro&123^^Seoul^^^^B'), 'PID-11', 'UTC')).toEqual({ use: 'work', line: ['Teheran-ro 123'], city: 'Seoul' });
  });
  it('a type alone is no address', () => expect(toAddress(rep('^^^^^^H'), 'PID-11', 'UTC')).toBeUndefined());
  it('mailing address is a postal type', () => expect(toAddress(rep('PO Box 1^^Seoul^^^^M'), 'PID-11', 'UTC')?.type).toBe('postal'));
});

describe('XTN -> ContactPoint', () => {
  const cases: Array<[string, string | undefined, object | undefined]> = [
    ['010-1234-5678^PRN^CP', 'home', { system: 'phone', value: '010-1234-5678', use: 'mobile' }],
    ['02-555-1234^WPN^PH', 'home', { system: 'phone', value: '02-555-1234', use: 'work' }],
    ['02-555-1234^^PH', 'work', { system: 'phone', value: '02-555-1234', use: 'work' }],
    ['^NET^Internet^a@example.org', 'home', { system: 'email', value: 'a@example.org', use: 'home' }],
    ['a@example.org^NET', undefined, { system: 'email', value: 'a@example.org' }],
    ['^PRN^FX^^82^2^5550000', 'home', { system: 'fax', value: '+82 2 5550000', use: 'home' }],
    ['^BPN^^^^^1234', 'work', { system: 'pager', value: '1234', use: 'work' }],
    ['^PRS^PH^^^^^^^^^01099998888', undefined, { system: 'phone', value: '01099998888', use: 'mobile' }],
    ['^PRN^PH', 'home', undefined],
  ];
  for (const [text, defaultUse, want] of cases) {
    it(text, () => expect(toContactPoint(rep(text), defaultUse)).toEqual(want));
  }
});

describe('CX -> Identifier', () => {
  const options = { ...defaultHl7MappingOptions, identifierSystems: { KNOWN: 'https://example.org/known' } };
  const facility = { namespace: 'FAC', universalId: '', universalIdType: '' };
  const cases: Array<[string, string | undefined]> = [
    ['1^^^A&2.16.840.1.113883.19&ISO^MR', 'urn:oid:2.16.840.1.113883.19'],
    ['1^^^&2.16.840.1.113883.19&iso^MR', 'urn:oid:2.16.840.1.113883.19'],
    ['1^^^KNOWN^MR', 'https://example.org/known'],
    ['1^^^KNOWN&1.2.3&ISO^MR', 'urn:oid:1.2.3'],
    // An OID in its URI form names the same authority as the bare OID: the same system.
    ['1^^^EPIC&urn:oid:1.2.840.114350&ISO^MR', 'urn:oid:1.2.840.114350'],
    ['1^^^&URN:OID:2.16.840.1.113883.19&ISO^MR', 'urn:oid:2.16.840.1.113883.19'],
    ['1^^^병원 A/B^MR', 'urn:anchorline:authority:%EB%B3%91%EC%9B%90%20A%2FB'],
    ['1^^^constructor^MR', 'urn:anchorline:authority:constructor'],
    ['1^^^&6ba7b810-9dad-11d1-80b4-00C04FD430C8&UUID', 'urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8'],
    ['1^^^&https://example.org/ids&URI', 'https://example.org/ids'],
    ['1^^^&example.org&DNS', 'urn:anchorline:authority:example.org'],
    ['1^^^^MR', 'urn:anchorline:authority:FAC'],
  ];
  for (const [text, system] of cases) {
    it(`${text} -> ${String(system)}`, () => expect(toIdentifier(rep(text), 'PID-3', options, facility)?.system).toBe(system));
  }
  it('without any authority there is no system', () => expect(toIdentifier(rep('1^^^^MR'), 'PID-3', options)).toEqual({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: '1' }));
  it('no value, no identifier', () => expect(toIdentifier(rep('^^^A^MR'), 'PID-3', options)).toBeUndefined());
  it('rejects an ISO universal id that is not an OID', () => {
    expect(codeOf(() => toIdentifier(rep('1^^^&not-an-oid&ISO'), 'PID-3', options))).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location: 'PID-3' });
  });
});

describe('CE/CWE -> CodeableConcept', () => {
  it('primary and alternate codings, known and local systems, original text', () => {
    expect(toCodeableConcept(rep('29463-7^Body weight^LN^BW^Weight^LOCALLAB^2.76^^Weight as measured'), defaultHl7MappingOptions, 'HL79999')).toEqual({
      coding: [
        { system: 'http://loinc.org', version: '2.76', code: '29463-7', display: 'Body weight' },
        { system: 'urn:anchorline:local/LOCALLAB', code: 'BW', display: 'Weight' },
      ],
      text: 'Weight as measured',
    });
  });
  it('a code without a system is local to the field\'s table', () => {
    expect(toCodeableConcept(rep('M'), { ...defaultHl7MappingOptions, localCodeSystemBase: 'https://example.org/cs' }, 'HL70002')).toEqual({
      coding: [{ system: 'https://example.org/cs/HL70002', code: 'M' }],
    });
  });
  it('text without a code', () => expect(toCodeableConcept(rep('^Married'), defaultHl7MappingOptions, 'HL70002')).toEqual({ text: 'Married' }));
  it('nothing', () => expect(toCodeableConcept(rep('^^HL70002'), defaultHl7MappingOptions, 'HL70002')).toBeUndefined());
});
