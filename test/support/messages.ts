/** Builders for realistic HL7 v2 test messages. Patient data here is invented. */
import iconv from 'iconv-lite';

export interface AdtOptions {
  event?: 'A01' | 'A04' | 'A08';
  controlId: string;
  mrn: string;
  family?: string;
  given?: string;
  facility?: string;
  application?: string;
  authority?: string;
  visit?: string;
  charset?: string;
  enhanced?: boolean;
  birthDate?: string;
  gender?: string;
  timestamp?: string;
}

export function adtMessage(o: AdtOptions): string {
  const event = o.event ?? 'A01';
  const ts = o.timestamp ?? '20261121093000';
  const segments = [
    segment('MSH', { 2: '^~\\&', 3: o.application ?? 'EMR', 4: o.facility ?? 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: ts, 9: `ADT^${event}^ADT_A01`, 10: o.controlId, 11: 'P', 12: '2.5.1', ...(o.enhanced ? { 15: 'AL', 16: 'NE' } : {}), ...(o.charset ? { 18: o.charset } : {}) }),
    segment('EVN', { 1: event, 2: ts }),
    segment('PID', { 1: '1', 3: `${o.mrn}^^^${o.authority ?? o.facility ?? 'SNUH'}^MR`, 5: `${o.family ?? 'Doe'}^${o.given ?? 'Jane'}`, 7: o.birthDate ?? '19800101', 8: o.gender ?? 'F', 11: '1 Main St^^Seoul^^04000^KOR', 13: '^PRN^PH^^^^^^^^^+82-2-555-0100' }),
    segment('PV1', { 1: '1', 2: 'I', 3: 'W1^101^A', 7: '1234^Kim^Minsu', 19: o.visit ?? `V${o.mrn}`, 44: ts }),
  ];
  return segments.join('\r') + '\r';
}

export function encode(text: string, charset: string): Buffer {
  return charset.toLowerCase() === 'utf-8' ? Buffer.from(text, 'utf8') : iconv.encode(text, charset);
}

/** One ER7 segment from field number -> value (MSH numbering: field 1 is the separator itself). */
export function segment(name: string, fields: Record<number, string | undefined>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  const values: string[] = [name];
  const first = name === 'MSH' ? 2 : 1;
  for (let n = first; n <= last; n++) values.push(fields[n] ?? '');
  return values.join('|');
}
