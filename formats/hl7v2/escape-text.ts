/**
 * Escaping of values the engine writes into HL7 v2 text (ACK fields, error text). Unescaping incoming values belongs
 * to the parser (parse.ts / escape.ts); this side only ever needs to produce escapes.
 */
import type { Hl7Encoding } from './types.ts';

/**
 * `value` made safe to place inside one field, component or subcomponent under `encoding`: each delimiter becomes its
 * escape sequence (\F\ \S\ \T\ \R\ \E\, and \P\ for the v2.7 truncation character), and CR/LF, which would end the
 * segment, become the hex escapes \X0D\ and \X0A\. The escape character in the sequences is the one in use, not
 * necessarily a backslash.
 */
export function escapeHl7(value: string, encoding: Hl7Encoding): string {
  const e = encoding.escape;
  const sequences = new Map<string, string>([
    [e, `${e}E${e}`],
    [encoding.field, `${e}F${e}`],
    [encoding.component, `${e}S${e}`],
    [encoding.subcomponent, `${e}T${e}`],
    [encoding.repetition, `${e}R${e}`],
    ['\r', `${e}X0D${e}`],
    ['\n', `${e}X0A${e}`],
  ]);
  if (encoding.truncation !== undefined) sequences.set(encoding.truncation, `${e}P${e}`);

  let out = '';
  let copiedUpTo = 0;
  for (let i = 0; i < value.length; i++) {
    const sequence = sequences.get(value.charAt(i));
    if (sequence === undefined) continue;
    out += value.slice(copiedUpTo, i) + sequence;
    copiedUpTo = i + 1;
  }
  return copiedUpTo === 0 ? value : out + value.slice(copiedUpTo);
}
