/**
 * The directory resources one message names (Organization, Location, Practitioner, PractitionerRole: the people,
 * organisations and places other resources refer to), collected while the message's builders run and emitted once,
 * before the first draft that refers to them (mappers/hl7v2/registry.ts). Apart from directory.ts, which builds them
 * from the HL7 datatypes, so that the mapping context can hold the collector without an import circle.
 */
import type { ResourceDraft } from '../types.ts';

/**
 * Dependency order between the directory types: an Organization is an identifier's assigner, a Location stands on
 * its own (partOf another Location, added parent first), a Practitioner's identifier names its assigner
 * Organization, a PractitionerRole names both a Practitioner and an Organization.
 */
const TYPE_ORDER: readonly string[] = ['Organization', 'Location', 'Practitioner', 'PractitionerRole'];

/**
 * The directory drafts of one message, one per resource. Every draft is an update draft (drafts.ts updateDraft):
 * what one mention leaves out (a practitioner sent with only an id) keeps what another mention, or the stored
 * resource, has. Two mentions of one resource in one message are merged here as the store would merge them one after
 * the other: an element the later one sends replaces the earlier one's.
 */
export class DirectoryDrafts {
  readonly #drafts = new Map<string, ResourceDraft>();

  /** Adds `draft`, or merges it into the draft of the same resource; returns its literal reference (`Practitioner/<id>`). */
  add(draft: ResourceDraft): string {
    const key = `${draft.resourceType}/${draft.id}`;
    const known = this.#drafts.get(key);
    if (known === undefined) {
      this.#drafts.set(key, draft);
    } else {
      for (const [name, value] of Object.entries(draft)) if (value !== undefined) known[name] = value;
    }
    return key;
  }

  /** Whether the message named `reference` (`Organization/<id>`) already. */
  has(reference: string): boolean {
    return this.#drafts.has(reference);
  }

  /** The draft of `reference` as the message's mentions so far make it (to be read, not changed: add merges). */
  get(reference: string): Readonly<ResourceDraft> | undefined {
    return this.#drafts.get(reference);
  }

  get size(): number {
    return this.#drafts.size;
  }

  /** The drafts in dependency order: by type (TYPE_ORDER), then in the order they were first named. */
  drafts(): ResourceDraft[] {
    const ordered: ResourceDraft[] = [];
    for (const type of TYPE_ORDER) for (const draft of this.#drafts.values()) if (draft.resourceType === type) ordered.push(draft);
    for (const draft of this.#drafts.values()) if (!TYPE_ORDER.includes(draft.resourceType)) ordered.push(draft);
    return ordered;
  }
}
