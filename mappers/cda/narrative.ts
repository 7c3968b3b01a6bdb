/**
 * Section narratives (section/text) in document order.
 *
 * The document is parsed into objects keyed by element name (@medplum/ccda's convertXmlToCcda), which keeps no order
 * between an element's text and its child elements: `Keep the <content>cast</content> dry` came out as
 * "cast" then "Keep thedry", in the Composition's narrative and in every text read from it. The narrative is what a
 * section keeps when its entries are not converted, so it must read as sent. Each top-level section's text, as the
 * guard's scan of the document found its markup, is therefore parsed again with the parser's order-preserving mode
 * (fast-xml-parser's preserveOrder: the library @medplum/ccda parses with, used as made for this) and replaces the
 * object parse's, as a string: @medplum/ccda writes a string narrative into Composition.section.text.div unchanged, and Narrative
 * (sections/cda-read.ts) reads text and ids from it in order. Whitespace runs become one space, as a browser shows them.
 */

import { XMLParser } from 'fast-xml-parser';

import { BoundedMemo } from '../memo.ts';
import { asNodes } from './normalize.ts';
import type { Node } from './section-types.ts';

/** A node of fast-xml-parser's preserveOrder output: `{ name: children, ':@': attributes }` or `{ '#text': text }`. */
type OrderedNode = Record<string, unknown>;

/** Narrative elements that stand apart from their neighbours (a cell, a row, a paragraph), unlike inline content. */
const BLOCK_ELEMENTS = new Set(['br', 'paragraph', 'list', 'item', 'table', 'thead', 'tbody', 'tfoot', 'tr', 'td', 'th', 'caption']);

const ATTRIBUTES = ':@';
const TEXT = '#text';

/** One parser for every narrative: its options are fixed, and parse() keeps no state between documents. */
const orderedParser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // A narrative may hold a comment or a processing instruction; neither is part of what it says.
  commentPropName: false,
});

/** The element name of an ordered node, undefined for text. */
function nameOf(node: OrderedNode): string | undefined {
  for (const key of Object.keys(node)) if (key !== ATTRIBUTES && key !== TEXT) return key;
  return undefined;
}

function childrenOf(node: OrderedNode): OrderedNode[] {
  const name = nameOf(node);
  const children = name === undefined ? undefined : node[name];
  return Array.isArray(children) ? (children as OrderedNode[]) : [];
}

function attributesOf(node: OrderedNode): Record<string, string> {
  const attributes = node[ATTRIBUTES];
  return attributes !== null && typeof attributes === 'object' ? (attributes as Record<string, string>) : {};
}

function textNodeOf(node: OrderedNode): string | undefined {
  const text = node[TEXT];
  return typeof text === 'string' ? text : typeof text === 'number' ? String(text) : undefined;
}

/**
 * Markup of ordered nodes, escaped for XML. Whitespace runs become one space; beside a block element (a paragraph, a
 * cell, a row) and at the start and end of one they are indentation and are left out, so that only the spaces
 * between words and inline elements stay.
 */
function serializeOrdered(nodes: readonly OrderedNode[], inBlock = true): string {
  let out = '';
  nodes.forEach((node, i) => {
    const text = textNodeOf(node);
    if (text !== undefined) {
      let words = text.replace(/\s+/g, ' ');
      const before = nodes[i - 1];
      const after = nodes[i + 1];
      if ((before === undefined && inBlock) || (before !== undefined && isBlock(before))) words = words.trimStart();
      if ((after === undefined && inBlock) || (after !== undefined && isBlock(after))) words = words.trimEnd();
      out += escapeText(words);
      return;
    }
    const name = nameOf(node);
    if (name === undefined || name.startsWith('?')) return;
    let attributes = '';
    for (const [key, value] of Object.entries(attributesOf(node))) attributes += ` ${key.replace(/^@_/, '')}="${escapeAttribute(String(value))}"`;
    const inner = serializeOrdered(childrenOf(node), BLOCK_ELEMENTS.has(name));
    out += inner === '' ? `<${name}${attributes}/>` : `<${name}${attributes}>${inner}</${name}>`;
  });
  return out;
}

function isBlock(node: OrderedNode): boolean {
  return BLOCK_ELEMENTS.has(nameOf(node) ?? '');
}

/** The ordered nodes of a narrative markup string (what narrativesInOrder put in place of a section's text). */
function parseNarrative(markup: string): OrderedNode[] {
  const parsed = orderedParser.parse(`<text>${markup}</text>`) as OrderedNode[];
  const root = parsed.find((node) => nameOf(node) === 'text');
  return root === undefined ? [] : childrenOf(root);
}

/**
 * Texts by ID of the narratives read lately, by their markup. A section's narrative is read by its converter and by
 * the Narrative its entries resolve references with, and orderSectionNarratives has its nodes at hand when it writes
 * it: one parse serves all three. Narratives longer than MEMO_MAX_CHARS are parsed each time rather than held.
 */
const textsByIdMemo = new BoundedMemo<string, ReadonlyMap<string, string>>(32);
const MEMO_MAX_CHARS = 256 * 1024;

/**
 * The text of each element of narrative markup that carries an ID, by ID (the first of a repeated one): its character
 * data in document order, block elements apart from their neighbours, whitespace runs as one space; an empty element
 * stands for the text after it (anchoredText); one that names no text at all is left out. What an entry's
 * `<reference value="#id"/>` points at.
 */
export function narrativeTextsById(markup: string): ReadonlyMap<string, string> {
  const known = textsByIdMemo.get(markup);
  if (known !== undefined) return known;
  const byId = textsById(parseNarrative(markup));
  if (markup.length <= MEMO_MAX_CHARS) textsByIdMemo.set(markup, byId);
  return byId;
}

function textsById(nodes: readonly OrderedNode[]): Map<string, string> {
  const byId = new Map<string, string>();
  const visit = (level: readonly OrderedNode[]): void => {
    level.forEach((node, index) => {
      const id = attributesOf(node)['@_ID'];
      if (typeof id === 'string' && id !== '' && !byId.has(id)) {
        const own = characterData(childrenOf(node)).replace(/\s+/g, ' ').trim();
        const text = own !== '' || BLOCK_ELEMENTS.has(nameOf(node) ?? '') ? own : anchoredText(level, index);
        if (text !== '') byId.set(id, text);
      }
      visit(childrenOf(node));
    });
  };
  visit(nodes);
  return byId;
}

/**
 * The text an empty inline element with an ID marks: some systems write the ID as an anchor before the text it names
 * (`<item><content ID="ins-1"/>Take with food</item>`) rather than around it. Its following siblings' character
 * data, up to the next sibling that carries an ID of its own or is a block (an empty table cell or list item names
 * nothing: the next one's text is not its).
 */
function anchoredText(level: readonly OrderedNode[], index: number): string {
  const following: OrderedNode[] = [];
  for (const sibling of level.slice(index + 1)) {
    if (textNodeOf(sibling) === undefined && (typeof attributesOf(sibling)['@_ID'] === 'string' || BLOCK_ELEMENTS.has(nameOf(sibling) ?? ''))) break;
    following.push(sibling);
  }
  return characterData(following).replace(/\s+/g, ' ').trim();
}

/** The character data of ordered narrative nodes, in document order; block elements apart from their neighbours. */
function characterData(nodes: readonly OrderedNode[]): string {
  let out = '';
  for (const node of nodes) {
    const text = textNodeOf(node);
    if (text !== undefined) out += text;
    else if (BLOCK_ELEMENTS.has(nameOf(node) ?? '')) out += ` ${characterData(childrenOf(node))} `;
    else out += characterData(childrenOf(node));
  }
  return out;
}

/**
 * Replaces the text of each top-level section of `ccda` (the object parse of the document) with its markup in document
 * order, from `narratives`: the markup of each top-level section's text as the guard's scan found it
 * (formats/cda/guard.ts readCdaText), one slot per section. Sections the two do not agree on are left as they are.
 */
export function orderSectionNarratives(ccda: Node, narratives: ReadonlyArray<string | undefined>): void {
  const objectSections = asNodes((ccda.component as Node | undefined)?.structuredBody as unknown)
    .flatMap((body) => asNodes(body.component))
    .flatMap((component) => asNodes(component.section));
  if (objectSections.length !== narratives.length) return;
  objectSections.forEach((section, i) => {
    const markup = narratives[i];
    if (section.text === undefined || markup === undefined) return;
    let nodes: OrderedNode[];
    try {
      nodes = parseNarrative(markup);
    } catch {
      return;
    }
    const markupInOrder = serializeOrdered(nodes);
    section.text = markupInOrder;
    // The texts by ID of the markup written are those of the nodes it was written from (whitespace runs as one space).
    if (markupInOrder.length <= MEMO_MAX_CHARS) textsByIdMemo.set(markupInOrder, textsById(nodes));
  });
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttribute(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;');
}
