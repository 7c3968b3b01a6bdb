/**
 * HL7 v2 text cut into segments and numbered fields, for display only (the engine's parser is the one that maps).
 * MSH is numbered as the standard does: MSH-1 is the field separator itself, MSH-2 the encoding characters.
 */
export interface SegmentView {
  name: string;
  /** Fields with their HL7 numbers, from 1; empty trailing fields are left out. */
  fields: Array<{ number: number; value: string }>;
}

export function hl7Segments(text: string): SegmentView[] {
  const lines = text.split(/\r\n|\r|\n/).filter((line) => line.trim() !== '');
  const fieldSeparator = lines.find((line) => line.startsWith('MSH'))?.charAt(3) || '|';
  return lines.map((line) => {
    const parts = line.split(fieldSeparator);
    const name = parts[0] ?? '';
    let fields: Array<{ number: number; value: string }>;
    if (name === 'MSH') {
      fields = [{ number: 1, value: fieldSeparator }, ...parts.slice(1).map((value, i) => ({ number: i + 2, value }))];
    } else {
      fields = parts.slice(1).map((value, i) => ({ number: i + 1, value }));
    }
    while (fields.length > 0 && fields[fields.length - 1]!.value === '') fields.pop();
    return { name, fields };
  });
}

/** XML laid out one element per line, for a document that arrived on a single line; otherwise as it is. */
export function prettyXml(xml: string): string {
  if (xml.split('\n').length > 3) return xml;
  const tokens = xml.replace(/>\s*</g, '>\n<').split('\n');
  let depth = 0;
  const lines: string[] = [];
  for (const token of tokens) {
    const closing = /^<\//.test(token);
    const selfContained = /^<[^!?/][^>]*\/>$/.test(token) || /^<([^\s>]+)[^>]*>.*<\/\1>$/.test(token) || /^<[?!]/.test(token);
    if (closing) depth = Math.max(0, depth - 1);
    lines.push('  '.repeat(depth) + token);
    if (!closing && !selfContained && token.startsWith('<')) depth++;
  }
  return lines.join('\n');
}
