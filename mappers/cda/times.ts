/**
 * CDA times (TS, IVL_TS) read as FHIR, for the section converters (section-converters.ts) and the corrections of
 * what the converter makes (resources.ts). Values are those normalize.ts left in place: dates encoded for
 * DatePrecision, which the caller restores when it reads them after the tidy step.
 */
import { mapCcdaToFhirDateTime } from '@medplum/ccda';

type Node = Record<string, unknown>;

/** The `@_value` of a TS, or of an IVL_TS's low when it has no value of its own. */
export function tsValue(ts: unknown): string | undefined {
  const node = (Array.isArray(ts) ? ts[0] : ts) as Node | undefined;
  if (node === undefined || node === null || typeof node !== 'object') return undefined;
  const value = node['@_value'];
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  return node.low === undefined ? undefined : tsValue(node.low);
}

/** A TS (or an IVL_TS's low) as a FHIR dateTime, as the converter reads one. */
export function cdaDateTime(ts: unknown): string | undefined {
  const value = tsValue(ts);
  return value === undefined ? undefined : mapCcdaToFhirDateTime(value);
}

/**
 * An IVL_TS as a FHIR Period, its bounds read by `dateTime`: low (else the interval's own value) as the start, high
 * as the end; undefined when neither is a time.
 */
export function cdaPeriod(ivl: unknown, dateTime: (ts: unknown) => string | undefined): { start?: string; end?: string } | undefined {
  if (ivl === null || typeof ivl !== 'object') return undefined;
  const node = (Array.isArray(ivl) ? ivl[0] : ivl) as Node | undefined;
  if (node === undefined) return undefined;
  const start = dateTime(node.low) ?? dateTime(node['@_value'] === undefined ? undefined : node);
  const end = dateTime(node.high);
  return start === undefined && end === undefined ? undefined : { ...(start ? { start } : {}), ...(end ? { end } : {}) };
}
