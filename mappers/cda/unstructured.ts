/**
 * The body of an unstructured C-CDA document (nonXMLBody; the C-CDA Unstructured Document template
 * 2.16.840.1.113883.10.20.22.1.10): a PDF, an image, RTF or plain text embedded in nonXMLBody/text (base64, possibly
 * compressed, or characters), or a reference to a file sent beside the document (text/reference).
 *
 * FHIR represents an unstructured document with a DocumentReference whose attachment holds or points to the content
 * (C-CDA on FHIR; US Core DocumentReference). The document's DocumentReference therefore gets the body as a content
 * repetition of its own, first, beside the one that points at the stored CDA document (DocumentReference.content
 * repeats once per format of the same document): contentType from the mediaType, the bytes as data (decompressed:
 * FHIR's Attachment has no compression), their size and SHA-1 hash, the language and the title; a reference keeps
 * its url as sent. The header is converted as for any document.
 */

import { createHash } from 'node:crypto';
import { gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';

import type { CdaIssue } from './issues.ts';
import { asNodes } from './normalize.ts';

type Node = Record<string, unknown>;

const LOCATION = '/ClinicalDocument/component/nonXMLBody/text';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** HL7 v3 CompressionAlgorithm codes this reads, and how. */
const DECOMPRESS: Readonly<Record<string, (bytes: Buffer, maxOutputLength: number) => Buffer>> = {
  DF: (bytes, maxOutputLength) => inflateRawSync(bytes, { maxOutputLength }),
  GZ: (bytes, maxOutputLength) => gunzipSync(bytes, { maxOutputLength }),
  ZL: (bytes, maxOutputLength) => inflateSync(bytes, { maxOutputLength }),
};

export interface UnstructuredBody {
  /** The DocumentReference.content repetition for the body; absent when nothing of it could be read. */
  content?: Node;
  issues: CdaIssue[];
}

/**
 * The nonXMLBody of a document as a DocumentReference content, or undefined for a document with a structuredBody.
 * `maxBytes` bounds what a compressed body may inflate to (the document size limit).
 */
export function unstructuredBody(ccda: Node, options: { language?: unknown; title?: unknown; maxBytes: number }): UnstructuredBody | undefined {
  const component = ccda.component as Node | undefined;
  const body = asNodes(component?.nonXMLBody)[0];
  if (component?.structuredBody !== undefined || body === undefined) return undefined;
  const text = Array.isArray(body.text) ? body.text[0] : body.text;
  const element: Node = typeof text === 'string' ? { '#text': text } : text !== null && typeof text === 'object' ? (text as Node) : {};
  const issues: CdaIssue[] = [];
  const notRead = (why: string): UnstructuredBody => ({
    issues: [{ severity: 'warning', code: 'body-not-structured', text: `the nonXMLBody content could not be read (${why}); the document is kept whole as the stored message`, location: LOCATION }],
  });

  const reference = asNodes(element.reference)[0]?.['@_value'];
  const url = typeof reference === 'string' && reference.trim() !== '' ? reference.trim() : undefined;
  const characters = typeof element['#text'] === 'string' ? element['#text'] : '';
  const representation = typeof element['@_representation'] === 'string' ? element['@_representation'].toUpperCase() : 'TXT';
  const compression = typeof element['@_compression'] === 'string' ? element['@_compression'].toUpperCase() : undefined;

  let bytes: Buffer | undefined;
  if (representation === 'B64') {
    const encoded = characters.replace(/\s+/g, '');
    if (encoded !== '') {
      if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) return notRead('representation B64, but the text is not base64');
      bytes = Buffer.from(encoded, 'base64');
    }
  } else if (characters.trim() !== '') {
    bytes = Buffer.from(characters, 'utf8');
  }
  if (bytes !== undefined && compression !== undefined) {
    const decompress = DECOMPRESS[compression];
    if (decompress === undefined) return notRead(`compression ${compression.slice(0, 8)} is not one this reads (DF, GZ, ZL)`);
    try {
      bytes = decompress(bytes, options.maxBytes);
    } catch {
      return notRead(`the ${compression} compressed content does not inflate, or inflates past ${options.maxBytes} bytes`);
    }
  }
  if (bytes === undefined && url === undefined) return notRead('nonXMLBody/text holds neither content nor a reference');

  // ED's default media type is text/plain; a reference sent without one (UD_sample.pdf) is left to its url's own.
  const sentType = typeof element['@_mediaType'] === 'string' && element['@_mediaType'].trim() !== '' ? element['@_mediaType'].trim() : undefined;
  const mediaType = sentType ?? (bytes !== undefined ? 'text/plain' : undefined);
  const language = (asNodes(body.languageCode)[0]?.['@_code'] as string | undefined) ?? options.language;
  const attachment: Node = {
    ...(mediaType !== undefined ? { contentType: mediaType } : {}),
    ...(typeof language === 'string' && language !== '' ? { language } : {}),
    ...(bytes !== undefined ? { data: bytes.toString('base64'), size: bytes.length, hash: createHash('sha1').update(bytes).digest('base64') } : {}),
    ...(url !== undefined ? { url } : {}),
    ...(typeof options.title === 'string' && options.title !== '' ? { title: options.title } : {}),
  };
  return { content: { attachment }, issues };
}
