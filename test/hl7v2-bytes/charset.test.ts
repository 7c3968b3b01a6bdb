import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { decodeHl7Bytes, encodeHl7Text, resolveCharset, type MshHeader } from '../../formats/hl7v2/index.ts';

const FIXTURES = new URL('../fixtures/hl7v2-bytes/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));

interface DecodeCase {
  file: string;
  charset?: string;
  header?: Partial<MshHeader>;
  contains?: string;
  wantErr?: ErrorCode;
}
const decodeCases = (JSON.parse(readFileSync(new URL('decode-cases.json', FIXTURES), 'utf8')) as { cases: DecodeCase[] }).cases;

function codeOf(run: () => unknown): ErrorCode | 'no error' | 'not an AnchorlineError' {
  try {
    run();
    return 'no error';
  } catch (error) {
    return error instanceof AnchorlineError ? error.code : 'not an AnchorlineError';
  }
}

function errorOf(run: () => unknown): AnchorlineError {
  try {
    run();
  } catch (error) {
    if (error instanceof AnchorlineError) return error;
    throw error;
  }
  throw new Error('expected an AnchorlineError');
}

describe('resolveCharset', () => {
  it.each([
    ['ASCII', 'ascii'],
    ['ISO IR6', 'ascii'],
    ['8859/1', 'iso-8859-1'],
    ['8859/2', 'iso-8859-2'],
    ['8859/3', 'iso-8859-3'],
    ['8859/4', 'iso-8859-4'],
    ['8859/5', 'iso-8859-5'],
    ['8859/6', 'iso-8859-6'],
    ['8859/7', 'iso-8859-7'],
    ['8859/8', 'iso-8859-8'],
    ['8859/9', 'iso-8859-9'],
    ['8859/15', 'iso-8859-15'],
    ['ISO-8859-1', 'iso-8859-1'],
    ['ISO IR100', 'iso-8859-1'],
    ['UNICODE UTF-8', 'utf-8'],
    ['unicode utf-8', 'utf-8'],
    ['UTF-8', 'utf-8'],
    ['utf8', 'utf-8'],
    ['  UTF-8  ', 'utf-8'],
    ['KS X 1001', 'euc-kr'],
    ['ks x 1001', 'euc-kr'],
    ['EUC-KR', 'euc-kr'],
    ['euc-kr', 'euc-kr'],
    ['KSC5601', 'euc-kr'],
    ['KS C 5601', 'euc-kr'],
    ['KS C 5601-1987', 'euc-kr'],
    ['ISO IR149', 'euc-kr'],
    ['CP949', 'cp949'],
    ['MS949', 'cp949'],
    ['UHC', 'cp949'],
    ['WINDOWS-1252', 'windows-1252'],
    ['CP1252', 'windows-1252'],
    ['GB 18030-2000', 'gb18030'],
    ['GB2312', 'gb18030'],
    ['GBK', 'gb18030'],
    ['EUC-CN', 'gb18030'],
    ['x-windows-949', 'cp949'],
    ['BIG-5', 'big5'],
  ])('%s -> %s', (msh18, want) => {
    expect(resolveCharset(msh18, 'UTF-8')).toBe(want);
    expect(iconv.encodingExists(want)).toBe(true);
  });

  it.each([
    ['', 'UTF-8', 'utf-8'],
    ['   ', 'EUC-KR', 'euc-kr'],
    ['', 'KS X 1001', 'euc-kr'],
    ['8859/1', 'EUC-KR', 'iso-8859-1'],
  ])('empty MSH-18 %j uses the default %s', (msh18, defaultCharset, want) => {
    expect(resolveCharset(msh18, defaultCharset)).toBe(want);
  });

  it.each(['UNICODE UTF-16', 'UNICODE UTF-32', 'UTF-16', 'UTF-16LE', 'UNICODE', 'ISO IR87', 'ISO IR159', 'SHIFT_JIS', 'KLINGON', '8859/10', 'UTF-8~ASCII'])(
    '%s is unsupported',
    (msh18) => {
      const error = errorOf(() => resolveCharset(msh18, 'UTF-8'));
      expect(error.code).toBe('ANCHORLINE_ERR_CHARSET_UNSUPPORTED');
      expect(error.location).toBe('MSH-18');
      expect(error.detail).not.toContain(msh18);
    },
  );

  it('an unsupported default is reported too', () => {
    expect(codeOf(() => resolveCharset('', 'UTF-16'))).toBe('ANCHORLINE_ERR_CHARSET_UNSUPPORTED');
  });
});

describe('decodeHl7Bytes on fixtures', () => {
  it.each(decodeCases)('$file', ({ file, charset, header, contains, wantErr }) => {
    const raw = fixture(file);
    if (wantErr !== undefined) {
      expect(codeOf(() => decodeHl7Bytes(raw))).toBe(wantErr);
      return;
    }
    const decoded = decodeHl7Bytes(raw);
    expect(decoded.charset).toBe(charset);
    expect(decoded.header).toMatchObject(header ?? {});
    expect(decoded.text).toContain(contains);
    expect(decoded.text.includes('\ufffd')).toBe(false);
  });

  it('a lying charset is reported at MSH-18 without any message content', () => {
    const error = errorOf(() => decodeHl7Bytes(fixture('adt-a01-lying-utf8.hl7')));
    expect(error.location).toBe('MSH-18');
    expect(error.detail).toBe('message bytes are not valid utf-8');
  });

  it('EUC-KR bytes are accepted when MSH-18 is empty and the default is EUC-KR', () => {
    const text = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5.1\rPID|1||1||홍^길동\r';
    const decoded = decodeHl7Bytes(iconv.encode(text, 'euc-kr'), 'EUC-KR');
    expect(decoded.charset).toBe('euc-kr');
    expect(decoded.text).toBe(text);
  });

  it('EUC-KR bytes are a mismatch under the UTF-8 default when MSH-18 is empty', () => {
    const text = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5.1\rPID|1||1||홍^길동\r';
    expect(codeOf(() => decodeHl7Bytes(iconv.encode(text, 'euc-kr')))).toBe('ANCHORLINE_ERR_CHARSET_MISMATCH');
  });

  it('non-ASCII header fields come out decoded', () => {
    const text = 'MSH|^~\\&|서울병원|B|C|D|20240101||ADT^A01|C1|P|2.5.1|||||KOR|KS X 1001\r';
    expect(decodeHl7Bytes(iconv.encode(text, 'euc-kr')).header.sendingApplication).toBe('서울병원');
  });
});

const msh = (msh18: string): string => `MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5.1|||||XXX|${msh18}\r`;

describe('decodeHl7Bytes, strict decoding per charset', () => {
  interface StrictCase {
    name: string;
    raw: Buffer;
    wantText?: string;
    wantErr?: ErrorCode;
  }
  const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
  const cases: StrictCase[] = [
    { name: 'ASCII', raw: latin1(msh('ASCII') + 'PID|1||1||DOE^JOHN\r'), wantText: msh('ASCII') + 'PID|1||1||DOE^JOHN\r' },
    { name: 'ASCII declared, 8-bit byte', raw: latin1(msh('ASCII') + 'PID|1||1||M\xfcller\r'), wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH' },
    {
      name: 'windows-1252 euro sign',
      raw: Buffer.concat([latin1(msh('WINDOWS-1252') + 'NTE|1||'), Buffer.from([0x80]), latin1('5\r')]),
      wantText: msh('WINDOWS-1252') + 'NTE|1||€5\r',
    },
    {
      name: 'windows-1252 undefined byte 0x81',
      raw: Buffer.concat([latin1(msh('CP1252') + 'NTE|1||'), Buffer.from([0x81]), latin1('\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: '8859/9 Turkish letter',
      raw: Buffer.concat([latin1(msh('8859/9') + 'PID|1||1||'), Buffer.from([0xd0]), latin1('\r')]),
      wantText: msh('8859/9') + 'PID|1||1||Ğ\r',
    },
    {
      name: '8859/3 byte with no character',
      raw: Buffer.concat([latin1(msh('8859/3') + 'PID|1||1||'), Buffer.from([0xa5]), latin1('\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'GB 18030 Chinese name',
      raw: iconv.encode(msh('GB 18030-2000') + 'PID|1||1||张^三\r', 'gb18030'),
      wantText: msh('GB 18030-2000') + 'PID|1||1||张^三\r',
    },
    {
      name: 'GB 18030 really encoding U+FFFD is accepted',
      raw: iconv.encode(msh('GB 18030-2000') + 'NTE|1||\ufffd\r', 'gb18030'),
      wantText: msh('GB 18030-2000') + 'NTE|1||\ufffd\r',
    },
    {
      name: 'GB 18030 truncated four-byte sequence',
      raw: Buffer.concat([latin1(msh('GB 18030-2000') + 'NTE|1||'), Buffer.from([0x84, 0x31]), latin1('|\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'Big5 name whose trail byte is a backslash',
      raw: iconv.encode(msh('BIG-5') + 'PID|1||1||陳^大文功\r', 'big5'),
      wantText: msh('BIG-5') + 'PID|1||1||陳^大文功\r',
    },
    {
      name: 'Big5 invalid lead byte',
      raw: Buffer.concat([latin1(msh('BIG-5') + 'PID|1||1||'), Buffer.from([0x80, 0x41]), latin1('\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'EUC-KR lead byte followed by CR',
      raw: Buffer.concat([latin1(msh('EUC-KR') + 'PID|1||1||'), Buffer.from([0xb0]), latin1('\rPV1|1\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'EUC-KR lead byte at the very end',
      raw: Buffer.concat([latin1(msh('KS X 1001') + 'PID|1||1||'), Buffer.from([0xc8])]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'CP949 label with UTF-8 bytes',
      raw: Buffer.from(msh('CP949') + 'PID|1||1||홍^길동\r', 'utf8'),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'UTF-8 overlong encoding',
      raw: Buffer.concat([latin1(msh('UTF-8') + 'NTE|1||'), Buffer.from([0xc0, 0xaf]), latin1('\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'UTF-8 encoded surrogate',
      raw: Buffer.concat([latin1(msh('UTF-8') + 'NTE|1||'), Buffer.from([0xed, 0xa0, 0x80]), latin1('\r')]),
      wantErr: 'ANCHORLINE_ERR_CHARSET_MISMATCH',
    },
    {
      name: 'UTF-8 with a BOM',
      raw: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(msh('UNICODE UTF-8') + 'PID|1||1||홍^길동\r', 'utf8')]),
      wantText: msh('UNICODE UTF-8') + 'PID|1||1||홍^길동\r',
    },
    { name: 'empty input', raw: Buffer.alloc(0), wantErr: 'ANCHORLINE_ERR_HL7_NO_MSH' },
    { name: 'only a BOM', raw: Buffer.from([0xef, 0xbb, 0xbf]), wantErr: 'ANCHORLINE_ERR_HL7_NO_MSH' },
    {
      name: 'UTF-16 bytes',
      raw: Buffer.from(msh('UNICODE UTF-16'), 'utf16le'),
      wantErr: 'ANCHORLINE_ERR_HL7_NO_MSH',
    },
  ];

  it.each(cases)('$name', ({ raw, wantText, wantErr }) => {
    if (wantErr !== undefined) {
      expect(codeOf(() => decodeHl7Bytes(raw))).toBe(wantErr);
      return;
    }
    expect(decodeHl7Bytes(raw).text).toBe(wantText);
  });
});

describe('decodeHl7Bytes, declarations the bytes leave no doubt about', () => {
  const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

  it('reads UTF-8 bytes declared ASCII as UTF-8, and says so', () => {
    const decoded = decodeHl7Bytes(utf8(msh('ASCII') + 'PID|1||1||MÜLLER^JÖRG\r'));
    expect(decoded.text).toBe(msh('ASCII') + 'PID|1||1||MÜLLER^JÖRG\r');
    expect(decoded.charset).toBe('utf-8');
    expect(decoded.declaredCharsetIgnored).toBe(true);
    // Plain ASCII declared ASCII is what it says.
    expect(decodeHl7Bytes(utf8(msh('ASCII') + 'PID|1||1||DOE\r')).declaredCharsetIgnored).toBeUndefined();
  });

  it('reads UTF-8 bytes whose MSH-18 names no character set as UTF-8, and says so', () => {
    for (const msh18 of ['PRELIM', 'UNICODE', 'KLINGON']) {
      const decoded = decodeHl7Bytes(utf8(msh(msh18) + 'PID|1||1||Ωμέγα\r'));
      expect(decoded.text).toContain('Ωμέγα');
      expect(decoded.declaredCharsetIgnored).toBe(true);
    }
  });

  it('still refuses bytes that are not UTF-8 under a declaration that does not fit them', () => {
    const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
    expect(codeOf(() => decodeHl7Bytes(latin1(msh('PRELIM') + 'PID|1||1||M\xfcller\r')))).toBe('ANCHORLINE_ERR_CHARSET_UNSUPPORTED');
    expect(codeOf(() => decodeHl7Bytes(latin1(msh('ASCII') + 'PID|1||1||M\xfcller\r')))).toBe('ANCHORLINE_ERR_CHARSET_MISMATCH');
    // A UTF-8 declaration on EUC-KR bytes is the lie this strictness exists for.
    expect(codeOf(() => decodeHl7Bytes(iconv.encode(msh('UNICODE UTF-8') + 'PID|1||1||홍^길동\r', 'euc-kr')))).toBe('ANCHORLINE_ERR_CHARSET_MISMATCH');
  });
});

describe('encodeHl7Text', () => {
  it.each([
    ['utf-8', 'MSH|^~\\&|홍길동\r'],
    ['euc-kr', 'MSH|^~\\&|홍길동\r'],
    ['euc-kr', 'MSH|^~\\&|김똠방\r'],
    ['cp949', 'MSH|^~\\&|김똠방\r'],
    ['iso-8859-1', 'MSH|^~\\&|Müller\r'],
    ['windows-1252', 'MSH|^~\\&|€\r'],
    ['gb18030', 'MSH|^~\\&|张三\r'],
    ['big5', 'MSH|^~\\&|陳大文\r'],
    ['ascii', 'MSH|^~\\&|DOE\r'],
  ])('%s round-trips %j', (charset, text) => {
    const bytes = encodeHl7Text(text, charset);
    expect(iconv.decode(bytes, charset === 'euc-kr' ? 'cp949' : charset)).toBe(text);
  });

  it('writes EUC-KR bytes for euc-kr', () => {
    expect(encodeHl7Text('홍길동', 'euc-kr')).toEqual(Buffer.from([0xc8, 0xab, 0xb1, 0xe6, 0xb5, 0xbf]));
  });

  it('accepts only charsets resolveCharset returns', () => {
    expect(codeOf(() => encodeHl7Text('x', 'utf-16le'))).toBe('ANCHORLINE_ERR_CHARSET_UNSUPPORTED');
    expect(codeOf(() => encodeHl7Text('x', 'KS X 1001'))).toBe('ANCHORLINE_ERR_CHARSET_UNSUPPORTED');
  });

  it('an ACK encoded in the message charset decodes back through decodeHl7Bytes', () => {
    const decoded = decodeHl7Bytes(fixture('adt-a01-ks-x-1001.hl7'));
    const reply = 'MSH|^~\\&|ANCHORLINE|HIE|서울|B|20240101||ACK^A01^ACK|A1|P|2.5.1||||||KS X 1001\rMSA|AA|MSG00002\r';
    expect(decodeHl7Bytes(encodeHl7Text(reply, decoded.charset)).text).toBe(reply);
  });
});
