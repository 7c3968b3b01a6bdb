/**
 * One Provenance per message, naming where the resources it wrote came from, after the IG's MSH[Provenance-Source]
 * map: agent `author` = MSH-4 sending facility (an Organization), else MSH-3 sending application (a Device); recorded
 * = MSH-7 (the IG maps MSH-7 to both recorded and occurred); activity = the message type; entity `source` = the
 * message itself, named by its control id (MSH-10) within its sender (MSH-3 and MSH-4 as sent, the resend key of the
 * intake); target = every resource the message's drafts describe.
 *
 * The raw message's SHA-256 (the inbox row's, which the ingest job passes as `rawSha256`) is a second `source`
 * entity, so that the Provenance names the exact bytes received, as the ledger's leaves do.
 * Targets name resources, not versions: the versions a message wrote are named by the ledger's leaves, each of
 * which commits to this message's raw hash.
 *
 * The id is the message's (sender, control id): a resend of the same message addresses the same Provenance.
 */

import { type Hl7Repetition, fieldOf } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import { reportIssue } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { type Coding, comp, toFhirDateTime } from './datatypes.ts';
import { sendingOrganizationReference } from './directory.ts';
import { repetitionText } from './drafts.ts';
import type { MappingContext } from './context.ts';

const PARTICIPANT_TYPE = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';
const AUTHOR: Coding = { system: PARTICIPANT_TYPE, code: 'author', display: 'Author' };

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The Provenance of a message whose drafts are `drafts`; undefined when the message wrote nothing, or has no control
 * id (intake refuses such messages) or no time that FHIR's `recorded` instant can hold (messageInstant).
 */
export function buildProvenance(context: MappingContext, drafts: readonly ResourceDraft[]): ResourceDraft | undefined {
  const { msh } = context;
  const targets = new Set<string>();
  for (const draft of drafts) if (draft.resourceType !== 'Provenance') targets.add(`${draft.resourceType}/${draft.id}`);
  const controlId = comp(fieldOf(msh, 10)[0], 1);
  if (targets.size === 0 || controlId === '') return undefined;

  const recorded = messageInstant(context);
  if (recorded === undefined) return undefined;

  const sender = `${repetitionText(fieldOf(msh, 3)[0])}|${repetitionText(fieldOf(msh, 4)[0])}`;
  const messageType = [comp(fieldOf(msh, 9)[0], 1), context.triggerEvent, comp(fieldOf(msh, 9)[0], 3)].filter((part) => part !== '').join('^');
  return {
    resourceType: 'Provenance',
    id: deterministicId('Provenance', sender, controlId),
    target: Array.from(targets, (reference) => ({ reference })),
    occurredDateTime: recorded,
    recorded,
    activity: { coding: [{ display: `message - ${messageType}` }], text: `HL7 v2 ${messageType}` },
    agent: [{ type: { coding: [AUTHOR] }, who: senderReference(context) }],
    entity: [
      {
        role: 'source',
        what: {
          identifier: { system: `urn:anchorline:hl7v2:control-id:${encodeURIComponent(sender)}`, value: controlId },
          display: `HL7 v2 ${messageType} message ${controlId}`,
        },
      },
      ...(context.options.rawSha256 === undefined
        ? []
        : [{ role: 'source', what: { identifier: { system: RAW_SHA256_SYSTEM, value: context.options.rawSha256 }, display: 'SHA-256 of the message as received' } }]),
    ],
  };
}

/** The identifier system of a message's raw SHA-256 (lowercase hex) in Provenance.entity. */
export const RAW_SHA256_SYSTEM = 'urn:anchorline:raw-sha256';

/**
 * MSH-7 as an instant (to the second, with an offset), which Provenance.recorded requires. HL7 allows MSH-7 to the
 * day only; such a message gets no Provenance, without an issue: a time of day made up for it would put a false time
 * into the record auditors read. An empty or unreadable MSH-7 (required in every message) is an issue.
 */
function messageInstant(context: MappingContext): string | undefined {
  const sent = comp(fieldOf(context.msh, 7)[0], 1);
  let time: string | undefined;
  try {
    time = toFhirDateTime(sent, 'MSH-7', context.options.timeZone);
  } catch {
    time = undefined;
  }
  if (time !== undefined) return time.length > 10 ? time : undefined;
  reportIssue({
    severity: 'warning',
    code: sent === '' ? 'ANCHORLINE_ISSUE_MISSING_FIELD' : 'ANCHORLINE_ISSUE_INVALID_VALUE',
    location: 'MSH-7',
    detail: `MSH-7: the message time is ${sent === '' ? 'empty' : 'not an HL7 date/time'}; the message has no Provenance`,
    ...(sent === '' ? {} : { value: sent }),
  });
  return undefined;
}

/**
 * The sender: MSH-4 as the Organization resource the message's drafts hold (registry.ts); else, when MSH-4 cannot be
 * one, a logical reference after the IG's HD[Organization] / HD[Device]: MSH-4 as an Organization, else MSH-3 as a
 * Device, its namespace id as the display and a universal id (an OID, UUID or URI) as its identifier. A message that
 * names neither is attributed to the source its connection or credential is bound to, or the configured default.
 */
function senderReference(context: MappingContext): Record<string, unknown> {
  const { msh, options } = context;
  const organization = context.directory.size > 0 ? sendingOrganizationOf(context) : undefined;
  if (organization !== undefined) return organization;
  for (const [field, type] of [
    [4, 'Organization'],
    [3, 'Device'],
  ] as const) {
    const reference = hdReference(fieldOf(msh, field)[0], type);
    if (reference !== undefined) return reference;
  }
  const named = options.boundSource ?? options.defaultAuthority;
  return { type: 'Organization', display: named === undefined || named === '' ? 'unidentified sender' : named };
}

/** The MSH-4 Organization when the message's drafts hold it (its authority was readable); otherwise undefined. */
function sendingOrganizationOf(context: MappingContext): Record<string, unknown> | undefined {
  try {
    const reference = sendingOrganizationReference(context);
    return reference?.reference !== undefined && context.directory.has(reference.reference) ? { ...reference, type: 'Organization' } : undefined;
  } catch {
    return undefined;
  }
}

function hdReference(hd: Hl7Repetition | undefined, type: string): Record<string, unknown> | undefined {
  const namespace = comp(hd, 1);
  const universalId = comp(hd, 2);
  const universalIdType = comp(hd, 3).toUpperCase();
  if (namespace === '' && universalId === '') return undefined;
  const uri =
    universalIdType === 'ISO' && OID.test(universalId)
      ? `urn:oid:${universalId}`
      : universalIdType === 'UUID' && UUID.test(universalId)
        ? `urn:uuid:${universalId.toLowerCase()}`
        : universalIdType === 'URI' && /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(universalId)
          ? universalId
          : undefined;
  return {
    type,
    ...(uri === undefined ? {} : { identifier: { system: 'urn:ietf:rfc:3986', value: uri } }),
    display: namespace || universalId,
  };
}
