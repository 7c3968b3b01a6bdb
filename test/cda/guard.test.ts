/**
 * The pre-parse guard (formats/cda/guard.ts): what it refuses before any XML parser runs, how it decodes, and the
 * property that any bytes give text or a coded refusal, never a throw of anything else.
 */

import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';

import { looksLikeClinicalDocument, readCdaHeaderText, readCdaText, type CdaLimits } from '../../formats/cda/guard.ts';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';

const LIMITS: CdaLimits = { maxBytes: 1024 * 1024, maxDepth: 200 };
const doc = (body = '<title>x</title>'): string => `<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">${body}</ClinicalDocument>\n`;

function refusal(input: string | Buffer, limits = LIMITS, charset?: string): { code: string; detail: string | undefined } {
  try {
    readCdaText(Buffer.isBuffer(input) ? input : Buffer.from(input), limits, charset);
  } catch (error) {
    expect(error).toBeInstanceOf(AnchorlineError);
    return { code: (error as AnchorlineError).code, detail: (error as AnchorlineError).detail };
  }
  throw new Error('the guard let the document through');
}

describe('pre-parse guard: markup declarations', () => {
  it.each([
    ['a DOCTYPE in the prolog', `<?xml version="1.0"?><!DOCTYPE ClinicalDocument><ClinicalDocument/>`],
    ['an internal subset with entities', `<!DOCTYPE x [<!ENTITY a "b">]><ClinicalDocument>&a;</ClinicalDocument>`],
    ['an external entity', `<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><ClinicalDocument>&xxe;</ClinicalDocument>`],
    ['a lower-case doctype', `<!doctype x><ClinicalDocument/>`],
    ['a DOCTYPE after a comment', `<!-- note --><!DOCTYPE x><ClinicalDocument/>`],
    ['a DOCTYPE inside the root', `<ClinicalDocument><!DOCTYPE x><title/></ClinicalDocument>`],
    ['an ENTITY declaration alone', `<ClinicalDocument><!ENTITY a "b"></ClinicalDocument>`],
    ['a DOCTYPE after the root', `<ClinicalDocument/><!DOCTYPE x>`],
  ])('refuses %s', (_name, xml) => {
    expect(refusal(xml).code).toBe('ANCHORLINE_ERR_CDA_DOCTYPE');
  });

  it('lets the words through where they are text: in a comment or a CDATA section', () => {
    expect(() => readCdaText(Buffer.from(doc('<!-- <!DOCTYPE x> --><text><![CDATA[<!ENTITY a "b">]]></text>')), LIMITS)).not.toThrow();
  });
});

describe('pre-parse guard: size and depth', () => {
  it('refuses a document over maxBytes, and takes one of exactly maxBytes', () => {
    const xml = Buffer.from(doc());
    expect(refusal(xml, { ...LIMITS, maxBytes: xml.length - 1 }).code).toBe('ANCHORLINE_ERR_CDA_TOO_LARGE');
    expect(() => readCdaText(xml, { ...LIMITS, maxBytes: xml.length })).not.toThrow();
  });

  it('refuses nesting past maxDepth, counting the root, and takes it at maxDepth', () => {
    const nested = (depth: number): string => `<ClinicalDocument>${'<a>'.repeat(depth - 1)}${'</a>'.repeat(depth - 1)}</ClinicalDocument>`;
    expect(() => readCdaText(Buffer.from(nested(10)), { ...LIMITS, maxDepth: 10 })).not.toThrow();
    expect(refusal(nested(11), { ...LIMITS, maxDepth: 10 }).code).toBe('ANCHORLINE_ERR_CDA_TOO_DEEP');
    // Self-closing elements do not nest.
    expect(() => readCdaText(Buffer.from(`<ClinicalDocument>${'<a/>'.repeat(50)}</ClinicalDocument>`), { ...LIMITS, maxDepth: 2 })).not.toThrow();
  });

  it('scans a deep hostile document in linear time without building anything', () => {
    const depth = 200_000;
    const started = performance.now();
    expect(refusal(`<ClinicalDocument>${'<a>'.repeat(depth)}`, { maxBytes: 10 * 1024 * 1024, maxDepth: 200 }).code).toBe('ANCHORLINE_ERR_CDA_TOO_DEEP');
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('pre-parse guard: well-formedness the parser would not check', () => {
  it.each([
    ['mismatched end tag', `<ClinicalDocument><a></b></ClinicalDocument>`],
    ['an unclosed root', `<ClinicalDocument><a/>`],
    ['two roots', `<ClinicalDocument/><ClinicalDocument/>`],
    ['text outside the root', `<ClinicalDocument/>trailing`],
    ['an unclosed comment', `<ClinicalDocument><!-- </ClinicalDocument>`],
    ['an unclosed start tag', `<ClinicalDocument><a b="1"`],
    ['an HTML entity', `<ClinicalDocument>&nbsp;</ClinicalDocument>`],
    ['a bare ampersand', `<ClinicalDocument>a & b</ClinicalDocument>`],
    ['a bare ampersand in an attribute', `<ClinicalDocument><a b="R&D"/></ClinicalDocument>`],
    ['a character reference to NUL', `<ClinicalDocument>&#0;</ClinicalDocument>`],
    ['another root element', `<Bundle/>`],
    ['a prefixed ClinicalDocument of another namespace', `<cda:ClinicalDocument xmlns:cda="urn:example:not-cda"/>`],
    ['a prefixed ClinicalDocument bound to no namespace', `<cda:ClinicalDocument/>`],
    ['nothing but a prolog', `<?xml version="1.0"?>`],
  ])('refuses %s', (_name, xml) => {
    expect(refusal(xml).code).toBe('ANCHORLINE_ERR_CDA_MALFORMED');
  });

  it('reads a document whose CDA namespace is bound to a prefix as one in the default namespace, other prefixes kept', () => {
    const prefixed = `<?xml version="1.0"?>\n<!-- a <comment> --><v3:ClinicalDocument xmlns:v3='urn:hl7-org:v3' xmlns:sdtc="urn:hl7-org:sdtc"><v3:id root="1.2.3"/><sdtc:raceCode code="2106-3"/><v3:title>T</v3:title></v3:ClinicalDocument>`;
    expect(readCdaText(Buffer.from(prefixed), LIMITS).text).toBe(`<?xml version="1.0"?>\n<!-- a <comment> --><ClinicalDocument xmlns:v3='urn:hl7-org:v3' xmlns:sdtc="urn:hl7-org:sdtc"><id root="1.2.3"/><sdtc:raceCode code="2106-3"/><title>T</title></ClinicalDocument>`);
  });

  it('takes an & where XML does not read references: in a comment, a CDATA section, a processing instruction', () => {
    expect(() => readCdaText(Buffer.from(`<?xml version="1.0"?><!-- exported by R&D --><?xml-stylesheet href="cda.xsl?a=1&b=2"?>${doc('<!-- Q&A --><text><![CDATA[a & b]]></text><a b="x &amp; y"/>')}`), LIMITS)).not.toThrow();
  });

  it('reads attribute values holding > and quotes of the other kind', () => {
    expect(() => readCdaText(Buffer.from(doc(`<a b="x > y" c='say "hi"'/>`)), LIMITS)).not.toThrow();
  });
});

describe('pre-parse guard: section narratives', () => {
  it('keeps the markup of each top-level section\'s first text, one slot per section, as sent', () => {
    const section = (inner: string): string => `<component><section>${inner}</section></component>`;
    const body = [
      section('<title>A</title><text>Keep the <content ID="c1">cast</content> dry &#xD64D; &amp; <!-- note --></text><entry><observation><text>not this</text></observation></entry>'),
      section('<title>no narrative</title><entry/>'),
      section('<text/><text>a second text is not the narrative</text>'),
      `<component><hl7:section xmlns:hl7="urn:hl7-org:v3"><hl7:text><hl7:paragraph>prefixed</hl7:paragraph></hl7:text></hl7:section></component>`,
      section('<text>outer</text><component><section><text>a nested section is its parent\'s</text></section></component>'),
    ].join('');
    const { sectionNarratives } = readCdaText(Buffer.from(doc(`<text>not in a section</text><component><structuredBody>${body}</structuredBody></component>`)), LIMITS);
    expect(sectionNarratives).toEqual(['Keep the <content ID="c1">cast</content> dry 홍 &amp; <!-- note -->', undefined, '', '<hl7:paragraph>prefixed</hl7:paragraph>', 'outer']);
  });
});

describe('pre-parse guard: decoding', () => {
  it('decodes numeric character references the parser leaves alone; markup characters stay escaped', () => {
    const { text } = readCdaText(Buffer.from(doc('<family>&#xD64D;&#44600;&#xAE38;</family><t>&#60;b&#62; &#38;</t>')), LIMITS);
    expect(text).toContain('<family>홍길길</family>');
    expect(text).toContain('<t>&lt;b&gt; &amp;</t>');
  });

  it('takes the encoding from a BOM, else the charset parameter, else the XML declaration, else UTF-8', () => {
    const korean = doc('<family>홍</family>');
    expect(readCdaText(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(korean)]), LIMITS)).toEqual({ text: korean, charset: 'utf-8', sectionNarratives: [] });
    expect(readCdaText(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(korean, 'utf16le')]), LIMITS).text).toBe(korean);
    const eucKr = korean.replace('UTF-8', 'EUC-KR');
    expect(readCdaText(iconv.encode(eucKr, 'euc-kr'), LIMITS)).toEqual({ text: eucKr, charset: 'cp949', sectionNarratives: [] });
    // A charset parameter wins over the declaration (RFC 7303), as for a document re-encoded in transit.
    expect(readCdaText(Buffer.from(eucKr, 'utf8'), LIMITS, 'utf-8').text).toBe(eucKr);
  });

  it('refuses bytes that are not valid in the encoding, and encodings it does not know', () => {
    expect(refusal(Buffer.concat([Buffer.from('<ClinicalDocument>'), Buffer.from([0xc3, 0x28]), Buffer.from('</ClinicalDocument>')])).code).toBe('ANCHORLINE_ERR_CHARSET_MISMATCH');
    expect(refusal(`<?xml version="1.0" encoding="x-unknown-7"?><ClinicalDocument/>`).code).toBe('ANCHORLINE_ERR_CDA_MALFORMED');
  });
});

describe('looksLikeClinicalDocument', () => {
  it('recognises a ClinicalDocument by its first element, after a prolog, comments or a DOCTYPE', () => {
    expect(looksLikeClinicalDocument(doc())).toBe(true);
    expect(looksLikeClinicalDocument(`\uFEFF<?xml version="1.0"?>\n<!-- c --><!DOCTYPE x><ClinicalDocument/>`)).toBe(true);
    expect(looksLikeClinicalDocument(`<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3">`)).toBe(true);
    expect(looksLikeClinicalDocument(`<Bundle><ClinicalDocument/></Bundle>`)).toBe(false);
    expect(looksLikeClinicalDocument('%PDF-1.4')).toBe(false);
  });
});

describe('pre-parse guard: property', () => {
  it('any bytes give text or a coded refusal, never another exception', () => {
    const pieces = ['<ClinicalDocument>', '</ClinicalDocument>', '<a>', '</a>', '<b/>', '<!DOCTYPE x>', '<!--', '-->', '<![CDATA[', ']]>', '&amp;', '&#x41;', '&', '<?xml version="1.0"?>', '"', "'", ' ', 'x', '\uFFFD'];
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((parts) => new TextEncoder().encode(parts.join('')))), (bytes) => {
        try {
          readCdaText(Buffer.from(bytes), { maxBytes: 10_000, maxDepth: 5 });
        } catch (error) {
          if (!isAnchorlineError(error)) throw error;
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('the scan of a large document', () => {
  // 200,000 small elements and one reference at the very end: a scan that looked for the next '&' afresh from each
  // text run read on to the end of the document every time (quadratic: minutes); it must be one pass.
  const body = `<component><structuredBody>${'<x>t</x>'.repeat(200_000)}<y>R&amp;D</y></structuredBody></component>`;
  const xml = `<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/><effectiveTime value="20261121"/>${body}</ClinicalDocument>`;
  const limits = { maxBytes: 10 * 1024 * 1024, maxDepth: 200 };

  it('reads the whole document in one linear pass', () => {
    const started = performance.now();
    expect(readCdaText(Buffer.from(xml), limits).text.length).toBeGreaterThan(1_600_000);
    // Generous for a loaded machine: the pass takes tens of milliseconds, the quadratic one took minutes.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('gives the intake the header alone, after checking every byte', () => {
    const header = readCdaHeaderText(Buffer.from(xml), limits).text;
    expect(header).toBe('<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/><effectiveTime value="20261121"/></ClinicalDocument>');
    // A fault in the body is still a refusal of the whole document.
    expect(() => readCdaHeaderText(Buffer.from(xml.replace('<y>R&amp;D</y>', '<y>R&D</y>')), limits)).toThrow(AnchorlineError);
    expect(() => readCdaHeaderText(Buffer.from(xml.replace('</structuredBody>', '</structured>')), limits)).toThrow(AnchorlineError);
  });
});
