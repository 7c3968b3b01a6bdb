/**
 * Equipment a message names, as Device resources: OBX-18 equipment instance identifier (EI) -> Observation.device,
 * after the IG's OBX[Observation] map (OBX-18 -> Observation.device, EI[Device-identifier]). The device is keyed by
 * its identifier's system and value, so an analyser named in a thousand results is one resource, found by identifier;
 * its authority is EI-2..4, else the message's fallback authority (the sender's own equipment ids).
 */
import { type Hl7Repetition } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';

import { sendingFacility } from './adt-common.ts';
import { type Reference, entityIdentifierOf, toEntityIdentifier } from './datatypes.ts';
import { updateDraft } from './drafts.ts';
import type { MappingContext } from './context.ts';

/** The Device an EI names (drafted into the message's directory), as a literal reference; undefined without an id. */
export function deviceReference(repetition: Hl7Repetition, location: string, context: MappingContext): Reference | undefined {
  const identifier = toEntityIdentifier(entityIdentifierOf(repetition), location, context.options, sendingFacility(context));
  if (identifier?.system === undefined || identifier.value === undefined) return undefined;
  const id = deterministicId('Device', identifier.system, identifier.value);
  const reference = `Device/${id}`;
  if (!context.directory.has(reference)) context.directory.add(updateDraft('Device', id, { identifier: [identifier] }));
  return { reference, display: identifier.value };
}
