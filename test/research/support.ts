/**
 * Inputs for the research tests: the FHIR resources the engine's own mappers produced from the HL7 v2 and C-CDA
 * fixtures (their .expected.json), with merge instructions folded in as the store would apply them.
 */
import { readFileSync } from 'node:fs';

export type Json = Record<string, unknown>;

const fixture = (path: string): Json => JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8')) as Json;

/** The draft resources of a mapping fixture, `$merge` elements replaced by what they add. */
export function mappedResources(path: string): Json[] {
  const drafts = (fixture(path).drafts ?? []) as Json[];
  return drafts.map((draft) => {
    const out: Json = {};
    for (const [key, value] of Object.entries(draft)) {
      const merge = value as { $merge?: unknown } | null;
      const isMerge = merge && typeof merge === 'object' && !Array.isArray(merge) && '$merge' in merge;
      out[key] = isMerge ? ((merge as Json).set ?? (merge as Json)[key]) : value;
    }
    return out;
  });
}

export const byType = (resources: Json[], type: string): Json[] => resources.filter((r) => r.resourceType === type);

/** Two project secrets (32 bytes each), fixed so the tests are repeatable. */
export const SECRET_A = new Uint8Array(32).map((_, i) => (i * 7 + 1) & 0xff);
export const SECRET_B = new Uint8Array(32).map((_, i) => (i * 13 + 5) & 0xff);

/** Every string in a JSON value. */
export function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}
