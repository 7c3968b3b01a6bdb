import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { AnchorlineError, ERROR_CATALOGUE, type ErrorCode } from '../../errors/index.ts';
import { buildAck, decodeHl7Bytes, escapeHl7, readMshHeader } from '../../formats/hl7v2/index.ts';
import type { Hl7Encoding } from '../../formats/hl7v2/types.ts';

/** Runs `f`; passes if it returns or throws an AnchorlineError, fails on any other throw. */
function returnsOrCodedError(f: () => unknown): void {
  try {
    f();
  } catch (error) {
    if (!(error instanceof AnchorlineError)) throw error;
    expect(ERROR_CATALOGUE[error.code]).toBeDefined();
  }
}

const MSH18_VALUES = ['', 'UNICODE UTF-8', 'KS X 1001', 'EUC-KR', 'CP949', '8859/1', '8859/3', 'ASCII', 'GB 18030-2000', 'BIG-5', 'WINDOWS-1252', 'UNICODE UTF-16', 'X'];

/** Text built from HL7-ish pieces, so the generator reaches deep into the header rules rather than failing at "MSH". */
const hl7ishText = fc
  .array(
    fc.oneof(
      fc.constantFrom('MSH', '|', '^~\\&', '^', '~', '\\', '&', '\r', '\n', '\ufeff', 'ADT', 'A01', 'ACK', 'C1', '2.5.1', '2.3', ' ', '""', '#'),
      fc.constantFrom(...MSH18_VALUES),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(''));

const validHeaderText = fc
  .record({
    fields: fc.array(fc.stringMatching(/^[A-Za-z0-9 ^&.\-]{0,8}$/), { minLength: 16, maxLength: 16 }),
    msh18: fc.constantFrom(...MSH18_VALUES),
  })
  .map(({ fields, msh18 }) => {
    const f = [...fields];
    f[6] = 'ADT^A01';
    f[7] = 'ID' + (f[7] ?? '');
    f[15] = msh18;
    return 'MSH|^~\\&|' + f.join('|') + '\r';
  });

describe('header and charset properties', () => {
  it('(d) readMshHeader on arbitrary text returns or throws an AnchorlineError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), hl7ishText, hl7ishText.map((t) => 'MSH' + t)), (text) => {
        returnsOrCodedError(() => readMshHeader(text));
      }),
      { numRuns: 5000 },
    );
  });

  it('(d) decodeHl7Bytes on arbitrary bytes returns or throws an AnchorlineError', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc
        .tuple(validHeaderText, fc.uint8Array({ maxLength: 200 }))
        .map(([header, body]) => Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from(body)])),
      fc
        .tuple(hl7ishText, fc.constantFrom('utf8', 'latin1', 'utf16le') as fc.Arbitrary<BufferEncoding>)
        .map(([text, encoding]) => Buffer.from('MSH' + text, encoding)),
    );
    fc.assert(
      fc.property(bytes, fc.constantFrom('UTF-8', 'EUC-KR', 'ASCII', 'GB 18030-2000', 'UTF-16'), (raw, defaultCharset) => {
        returnsOrCodedError(() => decodeHl7Bytes(raw, defaultCharset));
      }),
      { numRuns: 5000 },
    );
  });

  it('a decoded message never contains a replacement character the bytes did not encode', () => {
    fc.assert(
      fc.property(validHeaderText, fc.uint8Array({ maxLength: 200 }), (header, body) => {
        const raw = Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from(body)]);
        let decoded;
        try {
          decoded = decodeHl7Bytes(raw);
        } catch (error) {
          if (error instanceof AnchorlineError) return;
          throw error;
        }
        if (decoded.text.includes('\ufffd')) {
          const codec = decoded.charset === 'euc-kr' ? 'cp949' : decoded.charset;
          expect(iconv.encode(decoded.text, codec)).toEqual(raw);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('text encoded in its declared Korean charset always decodes back to itself', () => {
    const hangul = fc.array(fc.integer({ min: 0xac00, max: 0xd7a3 }), { maxLength: 30 }).map((cs) => String.fromCharCode(...cs));
    fc.assert(
      fc.property(hangul, fc.constantFrom('KS X 1001', 'EUC-KR', 'CP949', 'UNICODE UTF-8'), (name, msh18) => {
        const text = `MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5.1|||||KOR|${msh18}\rPID|1||1||${name}\r`;
        const raw = msh18 === 'UNICODE UTF-8' ? Buffer.from(text, 'utf8') : iconv.encode(text, 'cp949');
        expect(decodeHl7Bytes(raw).text).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});

const delimiterSets = fc
  .shuffledSubarray([...'|^~\\&#!@$%*+/:;<=>?'], { minLength: 6, maxLength: 6 })
  .map(([field, component, repetition, escape, subcomponent, truncation]): Hl7Encoding => ({
    field: field!,
    component: component!,
    repetition: repetition!,
    escape: escape!,
    subcomponent: subcomponent!,
    truncation: truncation!,
  }));

describe('escape and ACK properties', () => {
  it('escaped text holds no delimiter or segment terminator outside escape sequences', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), delimiterSets, (value, enc) => {
        const escaped = escapeHl7(value, enc);
        for (const c of [enc.field, enc.component, enc.repetition, enc.subcomponent, enc.truncation!, '\r', '\n']) {
          expect(escaped.includes(c)).toBe(false);
        }
        // Escape characters only occur in pairs that bracket a sequence.
        expect(escaped.split(enc.escape).length % 2).toBe(1);
      }),
      { numRuns: 2000 },
    );
  });

  it('any ACK has MSH, MSA and optional ERR, reads back, and echoes the control id', () => {
    const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[];
    fc.assert(
      fc.property(
        delimiterSets,
        fc.stringMatching(/^[A-Za-z0-9]{1,12}$/),
        // The caller mints ACK control ids; any non-blank text, delimiters included, must survive escaping.
        fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s.trim() !== ''),
        fc.option(fc.record({ code: fc.constantFrom(...codes), location: fc.string({ maxLength: 10 }), detail: fc.string({ maxLength: 40 }) }), { nil: undefined }),
        fc.constantFrom('2.3', '2.4', '2.5', '2.5.1', '2.7', 'junk'),
        (enc, controlId, ackControlId, error, version) => {
          const e = enc;
          const incoming = `MSH${e.field}${e.component}${e.repetition}${e.escape}${e.subcomponent}${e.field}APP${e.field}FAC${e.field}ME${e.field}HERE${e.field}20240101${e.field}${e.field}ADT${e.component}A01${e.field}${controlId}${e.field}P${e.field}${version}\r`;
          const header = readMshHeader(incoming);
          const ack = buildAck({ header, ackCode: error ? 'AE' : 'AA', ackControlId, timestamp: new Date(0), timeZone: 'UTC', ...(error ? { error } : {}) });
          const segments = ack.split('\r');
          expect(segments.pop()).toBe('');
          expect(segments.map((s) => s.slice(0, 3))).toEqual(error ? ['MSH', 'MSA', 'ERR'] : ['MSH', 'MSA']);
          const ackHeader = readMshHeader(ack);
          expect(ackHeader.encoding).toEqual({ field: e.field, component: e.component, repetition: e.repetition, escape: e.escape, subcomponent: e.subcomponent });
          expect(ackHeader.messageType).toBe('ACK');
          expect(ackHeader.controlId).toBe(escapeHl7(ackControlId, header.encoding));
          expect(segments[1]?.split(e.field)[2]).toBe(controlId);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
