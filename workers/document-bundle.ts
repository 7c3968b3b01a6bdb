/**
 * The FHIR document of a C-CDA document, stored as a Bundle resource (type `document`) in the ingest transaction,
 * right after the document's own resources: its entries are the versions of them this batch made or found current
 * (mappers/cda/document.ts: Composition first, a RESTful fullUrl per entry, references as stored), so the Bundle is
 * the document as the store holds it, readable at /fhir/Bundle/{id} and by GET /fhir/Composition/{id}/$document.
 *
 * Size: a Bundle copies every resource of its document, once per version of the Bundle. A version is written only
 * when an entry changed (a document sent again, or mapped again with nothing new, writes none), and the Bundle stays
 * out of the reference index (store/resources.ts): it holds a reference for every one its entries hold, and a
 * document is a fixed record of what it said about whom, which a patient merge must not rewrite.
 *
 * Validation: every entry is a stored version, each validated against FHIR R4 when it was written; the Bundle's own
 * elements (type, identifier, timestamp, one fullUrl per type and id) are fixed by construction. Validating the
 * Bundle again would validate every resource of the document twice, for nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';

import { documentBundle, documentBundleId, type DocumentPlan } from '../mappers/index.ts';
import { resources, type StoredResource } from '../store/index.ts';

/** `Bundle/<id>` of the document Bundle a plan heads, before any renaming. */
export function documentBundleKey(plan: DocumentPlan): { resourceType: string; id: string } {
  return { resourceType: 'Bundle', id: documentBundleId(plan.entries[0]!.slice('Composition/'.length)) };
}

/**
 * The new version of a document's Bundle, or undefined when it would not change (or the Composition was not
 * stored). `renamed` maps the keys of resources kept apart under another id (workers/ingest.ts keepPatientsApart)
 * to their new keys; `latest` holds what this batch has made of each resource so far, and is updated here, as is
 * `stored` when the Bundle row had to be locked now.
 */
export async function documentBundleVersion(
  client: pg.PoolClient,
  plan: DocumentPlan,
  renamed: ReadonlyMap<string, string>,
  stored: Map<string, StoredResource>,
  latest: Map<string, StoredResource>,
  now: Date,
  eventTime: Date | undefined,
): Promise<StoredResource | undefined> {
  const entries: Array<Record<string, unknown>> = [];
  for (const key of plan.entries) {
    // A resource refused as invalid FHIR and never stored is no entry; references to it stay as the stored ones have them.
    const current = latest.get(renamed.get(key) ?? key);
    if (current !== undefined && !current.deleted) entries.push(current.content);
  }
  if (entries[0]?.resourceType !== 'Composition') return undefined;
  const content = documentBundle(entries, plan.fullUrlBase);
  const key = `Bundle/${content.id}`;
  if (!latest.has(key) && content.id !== documentBundleKey(plan).id) {
    // Kept apart under another patient, the Composition heads a Bundle of its own, not locked with the batch's rows.
    for (const [lockedKey, resource] of await resources.lockCurrent(client, [{ resourceType: 'Bundle', id: content.id }])) {
      stored.set(lockedKey, resource);
      latest.set(lockedKey, resource);
    }
  }
  const previous = latest.get(key);
  if (previous !== undefined && sameContent(previous.content, content)) return undefined;
  const version = resources.stampVersion(previous, content, now, eventTime);
  latest.set(key, version);
  return version;
}

function sameContent(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const { meta: _a, ...restA } = a;
  const { meta: _b, ...restB } = b;
  return isDeepStrictEqual(restA, restB);
}
