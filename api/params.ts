import { AnchorlineError } from '../errors/index.ts';

/**
 * Numbers that arrive in paths and on the command line (API key ids, message ids, version ids). `Number()` reads far
 * more than digits: `6e0`, `0x7`, `+7`, ` 7 ` and `7.0` are all 7, so a mistyped or crafted id could name another
 * record than the one it spells. Only the canonical decimal form is accepted.
 */

/** A positive integer written as decimal digits without sign, spaces or leading zeros; undefined for anything else. */
export function parsePositiveId(text: string | undefined): number | undefined {
  if (text === undefined || !/^[1-9][0-9]{0,14}$/.test(text)) return undefined;
  return Number(text);
}

/** A query parameter that may be given once (`?_count=5`), whose value it is; a repeated one is refused. */
export function singleValue(value: string | string[], name: string): string {
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} may be given once`, { location: name });
    return value[0]!;
  }
  return value;
}
