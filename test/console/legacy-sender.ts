/**
 * The legacy sender of the console tests: its HIS puts the medical record number in PID-2 (the v2.3 "external id")
 * and leaves PID-3 empty. The engine would identify the patient by PID-2 on its own (an
 * ANCHORLINE_ISSUE_IDENTIFIER_FALLBACK issue), but this sender's config wants patients identified only by the field
 * it names, and makes that fallback fatal. It reads PID-3, as the default does, so its messages fail with
 * ANCHORLINE_ERR_MAPPING_FATAL_ISSUE at PID-3 until the config reads PID-2. Patient data here is invented.
 */
import { segment } from '../support/messages.ts';

export const LEGACY_APPLICATION = 'LEGACYADT';
export const LEGACY_FACILITY = 'MIDWESTGEN';
export const LEGACY_CONFIG_NAME = 'midwest-legacy';

/** The config file as the engine starts with it: matched to the sender, reading the patient key where the default does. */
export const LEGACY_CONFIG_YAML = `# Midwest General's legacy ADT feed.
name: ${LEGACY_CONFIG_NAME}
description: Midwest General legacy HIS, ADT
match:
  sendingApplication: ${LEGACY_APPLICATION}
timeZone: America/Chicago
identifierSystems:
  ${LEGACY_FACILITY}: https://fhir.midwestgen.example/sid/mrn
# Patients are identified by the field this config names, never by a fallback.
fatalIssues: [ANCHORLINE_ISSUE_IDENTIFIER_FALLBACK]
`;

/** What fixes it: the key and the identifier from PID-2. */
export const LEGACY_FIELDS_FIX = `fields:
  Patient.key: PID-2
  Patient.identifier: [PID-2]
`;

export function legacyAdt(controlId: string, mrn: string, family = 'HANSEN', given = 'ERIK'): string {
  const ts = '20260115101500';
  return (
    [
      segment('MSH', { 2: '^~\\&', 3: LEGACY_APPLICATION, 4: LEGACY_FACILITY, 5: 'ANCHORLINE', 6: 'ANCHORLINE', 7: ts, 9: 'ADT^A04', 10: controlId, 11: 'P', 12: '2.3' }),
      segment('EVN', { 1: 'A04', 2: ts }),
      segment('PID', { 1: '1', 2: `${mrn}^^^${LEGACY_FACILITY}^MR`, 5: `${family}^${given}`, 7: '19700722', 8: 'M' }),
      segment('PV1', { 1: '1', 2: 'O', 3: 'CLINIC^1^A' }),
    ].join('\r') + '\r'
  );
}
