/**
 * Unstructured documents (nonXMLBody, C-CDA Unstructured Document): the body becomes the first content of the
 * document's DocumentReference (contentType from the mediaType, the bytes as data, language, title), beside the
 * content that points at the stored CDA document; a reference-only body keeps its url; a body that cannot be read is
 * an issue, and the document is still stored and its header converted. On the HL7 C-CDA examples and crafted variants.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, gzipSync } from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { convertCdaDocument, type CdaConversion } from '../../mappers/cda/index.ts';
import { defaultHl7MappingOptions, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const corpus = (name: string): Buffer => readFileSync(path.join(HERE, '..', 'fixtures', 'corpus', 'ccda', 'hl7-c-cda-examples', name));
const template = readFileSync(path.join(HERE, '..', 'fixtures', 'cda', 'unknown-section.xml'), 'utf8');

function convert(raw: Buffer | string, options: { maxBytes?: number; subjectPatientId?: string } = {}): CdaConversion {
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  return convertCdaDocument(bytes, {
    mapping: defaultHl7MappingOptions,
    source: { sha256: createHash('sha256').update(bytes).digest(), size: bytes.length },
    ...(options.maxBytes ? { limits: { maxBytes: options.maxBytes, maxDepth: 200 } } : {}),
    ...(options.subjectPatientId ? { subjectPatientId: options.subjectPatientId } : {}),
  });
}

/** The crafted document with its structuredBody replaced by a nonXMLBody holding `text`. */
function withBody(text: string, languageCode = ''): string {
  return template.replace(/<component>\s*<structuredBody>[\s\S]*<\/structuredBody>\s*<\/component>/, `<component><nonXMLBody>${languageCode}${text}</nonXMLBody></component>`);
}

function contents(conversion: CdaConversion): Array<{ attachment: Record<string, unknown>; format?: unknown }> {
  return conversion.documentReference!.content as Array<{ attachment: Record<string, unknown> }>;
}

const sha1 = (bytes: Buffer): string => createHash('sha1').update(bytes).digest('base64');

describe('unstructured documents', () => {
  it('puts an embedded PDF in the DocumentReference, before the stored document, as valid FHIR', () => {
    const raw = corpus('Unstructured_Document_embed.xml');
    const conversion = convert(raw);
    const [body, stored] = contents(conversion);
    const pdf = Buffer.from(/representation="B64">([^<]+)</.exec(raw.toString('utf8'))![1]!.replace(/\s+/g, ''), 'base64');
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect(body!.attachment).toEqual({
      contentType: 'application/pdf',
      language: 'en-US',
      data: pdf.toString('base64'),
      size: pdf.length,
      hash: sha1(pdf),
      title: 'Community Health and Hospitals: Discharge Summary',
    });
    expect(stored!.attachment).toMatchObject({ contentType: 'text/xml', url: `urn:anchorline:message:${createHash('sha256').update(raw).digest('hex')}`, size: raw.length });
    expect(stored!.format).toMatchObject({ code: 'urn:hl7-org:sdwg:ccda-nonXMLBody:2.1' });
    // The body is converted: nothing is reported left out. The header still makes its Composition and Patient.
    expect(conversion.issues).toEqual([]);
    expect(conversion.resources.map((resource) => resource.resourceType)).toEqual(expect.arrayContaining(['Composition', 'Patient']));
    for (const draft of conversion.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), draft.resourceType).toEqual([]);
  });

  it('keeps plain text as UTF-8 bytes with its media type', () => {
    const conversion = convert(corpus('CDA_Embedded_Text_Plain_Surgical_Consult.xml'));
    const body = contents(conversion)[0]!.attachment;
    expect(body.contentType).toBe('text/plain');
    expect(Buffer.from(String(body.data), 'base64').toString('utf8')).toMatch(/^LOCAL TITLE: SURGICAL CONSULT/);
    const characters = convert(withBody('<text mediaType="text/plain">Discharged home. 퇴원.</text>'));
    expect(Buffer.from(String(contents(characters)[0]!.attachment.data), 'base64').toString('utf8')).toBe('Discharged home. 퇴원.');
  });

  it('keeps the url of a body that is only a reference, with no content type it was not sent', () => {
    const conversion = convert(corpus('Unstructured_Document_reference.xml'));
    const body = contents(conversion)[0]!.attachment;
    expect(body).toEqual({ language: 'en-US', url: 'UD_sample.pdf', title: 'Community Health and Hospitals: Discharge Summary (UD)' });
    expect(conversion.issues).toEqual([]);
    for (const draft of conversion.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), draft.resourceType).toEqual([]);
  });

  it('inflates DF, GZ and ZL compressed content (FHIR attachments are not compressed), and takes the body\'s own language', () => {
    const rtf = Buffer.from('{\\rtf1 CDA Rocks!}');
    for (const [code, packed] of [['DF', deflateRawSync(rtf)], ['GZ', gzipSync(rtf)]] as const) {
      const conversion = convert(withBody(`<text mediaType="text/rtf" representation="B64" compression="${code}">${packed.toString('base64')}</text>`, '<languageCode code="ko-KR"/>'));
      expect(contents(conversion)[0]!.attachment).toMatchObject({ contentType: 'text/rtf', language: 'ko-KR', data: rtf.toString('base64'), size: rtf.length });
    }
    // The C-CDA guide's own example.
    const example = convert(withBody('<text mediaType="text/rtf" representation="B64" compression="DF">c3ZxVAjKT84uVgQA</text>'));
    expect(Buffer.from(String(contents(example)[0]!.attachment.data), 'base64').toString()).toBe('CDA Rocks!');
  });

  it('reports a body it cannot read, and still stores the document with its header', () => {
    const cases: Array<[string, RegExp, number?]> = [
      ['<text mediaType="application/pdf" representation="B64">not base64 at all!</text>', /not base64/],
      ['<text mediaType="text/rtf" representation="B64" compression="BZ">QlpoOTFBWSZTWQ==</text>', /compression BZ/],
      [`<text mediaType="text/plain" representation="B64" compression="DF">${deflateRawSync(Buffer.alloc(100_000)).toString('base64')}</text>`, /inflates past 50000 bytes/, 50_000],
      ['<text/>', /neither content nor a reference/],
    ];
    for (const [text, why, maxBytes] of cases) {
      const conversion = convert(withBody(text), maxBytes ? { maxBytes } : {});
      expect(conversion.issues, text).toEqual([expect.objectContaining({ severity: 'warning', code: 'body-not-structured', text: expect.stringMatching(why), location: '/ClinicalDocument/component/nonXMLBody/text' })]);
      expect(contents(conversion).map((content) => content.attachment.contentType)).toEqual(['text/xml']);
      expect(conversion.resources[0]!.resourceType).toBe('Composition');
    }
  });

  it('makes no DocumentReference for a document inside an HL7 v2 message (the message\'s own describes it)', () => {
    const conversion = convert(corpus('Unstructured_Document_embed.xml'), { subjectPatientId: '2a1f2d36-4b1f-4f1e-9a55-6d4f1c3f6e01' });
    expect(conversion.documentReference).toBeUndefined();
    expect(conversion.drafts.some((draft) => draft.resourceType === 'DocumentReference')).toBe(false);
  });
});
