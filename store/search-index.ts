/**
 * What each resource type contributes to the search index: the FHIR R4 search parameters anchorline supports, as
 * (param, system, code) tokens and (param, value) strings. Adding a search parameter is adding a row here.
 */

export interface TokenEntry {
  param: string;
  system: string;
  code: string;
}
export interface StringEntry {
  param: string;
  value: string;
}

type Json = Record<string, unknown>;

function array(value: unknown): Json[] {
  return Array.isArray(value) ? (value.filter((v) => v && typeof v === 'object') as Json[]) : [];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function identifierTokens(resource: Json, param = 'identifier'): TokenEntry[] {
  return array(resource.identifier).flatMap((identifier) => {
    const code = str(identifier.value);
    return code ? [{ param, system: str(identifier.system) ?? '', code }] : [];
  });
}

function referenceToken(param: string, reference: unknown): TokenEntry[] {
  const ref = reference && typeof reference === 'object' ? str((reference as Json).reference) : undefined;
  return ref ? [{ param, system: '', code: ref }] : [];
}

function humanNameStrings(names: Json[]): StringEntry[] {
  const out: StringEntry[] = [];
  for (const name of names) {
    const family = str(name.family);
    const given = Array.isArray(name.given) ? (name.given.filter((g) => typeof g === 'string') as string[]) : [];
    const parts = [family, ...given, str(name.text), ...(Array.isArray(name.prefix) ? name.prefix : []), ...(Array.isArray(name.suffix) ? name.suffix : [])];
    if (family) out.push({ param: 'family', value: family });
    for (const g of given) out.push({ param: 'given', value: g });
    for (const part of parts) if (typeof part === 'string' && part) out.push({ param: 'name', value: part });
    // Whole-name forms, so that "홍길동" (family first, no space) and "John Smith" both match `name=`.
    if (family && given.length > 0) {
      out.push({ param: 'name', value: `${family}${given.join('')}` });
      out.push({ param: 'name', value: `${family} ${given.join(' ')}` });
      out.push({ param: 'name', value: `${given.join(' ')} ${family}` });
    }
  }
  return out;
}

const extractors: Record<string, (resource: Json) => { tokens: TokenEntry[]; strings: StringEntry[] }> = {
  Patient: (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...(str(r.gender) ? [{ param: 'gender', system: 'http://hl7.org/fhir/administrative-gender', code: r.gender as string }] : []),
    ],
    strings: humanNameStrings(array(r.name)),
  }),
  Encounter: (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...referenceToken('subject', r.subject),
      ...referenceToken('patient', r.subject),
      ...(str(r.status) ? [{ param: 'status', system: 'http://hl7.org/fhir/encounter-status', code: r.status as string }] : []),
    ],
    strings: [],
  }),
};

export function searchEntries(resource: Json): { tokens: TokenEntry[]; strings: StringEntry[] } {
  const extract = extractors[resource.resourceType as string];
  const entries = extract ? extract(resource) : { tokens: identifierTokens(resource), strings: [] };
  const seen = new Set<string>();
  const strings = entries.strings
    .map((s) => ({ param: s.param, value: normaliseSearchString(s.value) }))
    .filter((s) => s.value !== '' && !seen.has(`${s.param}\u0000${s.value}`) && seen.add(`${s.param}\u0000${s.value}`));
  return { tokens: entries.tokens, strings };
}

/** The search parameters each resource type supports, with their kind (for the API and the CapabilityStatement). */
export const SEARCH_PARAMETERS: Record<string, Record<string, 'token' | 'string' | 'reference'>> = {
  Patient: { identifier: 'token', gender: 'token', name: 'string', family: 'string', given: 'string' },
  Encounter: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference' },
};

/** FHIR string search is case- and accent-insensitive: compare lower-cased, without combining marks (Hangul recomposed). */
export function normaliseSearchString(value: string): string {
  return value.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').normalize('NFC').toLowerCase().trim();
}
