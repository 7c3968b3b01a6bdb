/**
 * The FHIR R4 terminology operations over the stored code systems and ConceptMaps, as Parameters resources:
 * CodeSystem/$lookup, CodeSystem/$validate-code and ConceptMap/$translate (http://hl7.org/fhir/R4/terminology-service.html).
 * Inputs are already taken apart (api/terminology.ts reads them from the query string or a Parameters body).
 *
 * Errors are catalogue errors: a code system, code or map that is not there is ANCHORLINE_ERR_NOT_FOUND (404 with
 * an OperationOutcome), except in $validate-code and $translate, whose answer to "not there" is `result: false`.
 */
import { AnchorlineError } from '../errors/index.ts';
import type { Queryable } from '../store/index.ts';
import { canonicalId, NON_MATCHING_EQUIVALENCES } from './concept-maps.ts';
import { readChildren, readConcept, type ConceptDesignation, type ConceptProperty, type StoredCodeSystem } from './store.ts';

export interface ParametersParameter {
  name: string;
  part?: ParametersParameter[];
  [value: `value${string}`]: unknown;
}

export interface Parameters {
  resourceType: 'Parameters';
  parameter: ParametersParameter[];
}

export interface CodingValue {
  system?: string;
  version?: string;
  code: string;
  display?: string;
}

/** Children listed by $lookup (property=child) at most. */
const MAX_CHILDREN = 1_000;

// ---------------------------------------------------------------------------------------------------------------
// $lookup

export interface LookupInput {
  system: string;
  code: string;
  version?: string;
  /** Property codes asked for; empty or absent: every stored property, inactive and parent. */
  properties?: string[];
  /** BCP 47 language of the display: a designation in it (or in its primary language) when the concept has one. */
  displayLanguage?: string;
}

export async function lookupCode(db: Queryable, input: LookupInput): Promise<Parameters> {
  const found = await readConcept(db, input.system, input.code);
  if (!found) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `code system ${input.system} is not loaded`, { location: 'system' });
  checkVersion(found.codeSystem, input.version);
  const { concept, codeSystem } = found;
  if (!concept) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `code ${input.code} is not in code system ${input.system} version ${codeSystem.version}`, { location: 'code' });

  const wanted = input.properties && input.properties.length > 0 ? new Set(input.properties) : undefined;
  const wants = (code: string): boolean => wanted === undefined || wanted.has(code);
  const parameter: ParametersParameter[] = [
    { name: 'name', valueString: codeSystem.title ?? codeSystem.name },
    { name: 'version', valueString: codeSystem.version },
    { name: 'display', valueString: displayIn(concept.designations, input.displayLanguage) ?? concept.display ?? concept.code },
  ];
  for (const designation of concept.designations) {
    const part: ParametersParameter[] = [];
    if (designation.language) part.push({ name: 'language', valueCode: designation.language });
    if (designation.use) part.push({ name: 'use', valueCoding: designation.use });
    part.push({ name: 'value', valueString: designation.value });
    parameter.push({ name: 'designation', part });
  }
  const properties: ConceptProperty[] = [];
  if (wants('inactive')) properties.push({ code: 'inactive', valueBoolean: !concept.active });
  for (const property of concept.properties) if (wants(property.code)) properties.push(property);
  if (wants('parent')) for (const parent of found.parents) properties.push({ code: 'parent', valueCode: parent });
  // Children can be thousands (SNOMED CT): listed only when asked for.
  if (wanted?.has('child')) for (const child of await readChildren(db, codeSystem.url, concept.code, MAX_CHILDREN)) properties.push({ code: 'child', valueCode: child });
  for (const property of properties) {
    const part: ParametersParameter[] = [{ name: 'code', valueCode: property.code }];
    for (const [key, value] of Object.entries(property)) {
      if (key.startsWith('value') && value !== undefined) part.push({ name: 'value', [key]: value } as ParametersParameter);
    }
    parameter.push({ name: 'property', part });
  }
  return { resourceType: 'Parameters', parameter };
}

function displayIn(designations: ConceptDesignation[], language: string | undefined): string | undefined {
  if (language === undefined) return undefined;
  const wanted = language.toLowerCase();
  const primary = wanted.split('-')[0];
  const exact = designations.find((d) => d.language?.toLowerCase() === wanted);
  return (exact ?? designations.find((d) => d.language?.toLowerCase().split('-')[0] === primary))?.value;
}

function checkVersion(codeSystem: StoredCodeSystem, version: string | undefined): void {
  if (version !== undefined && version !== codeSystem.version) {
    throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `version ${version} of code system ${codeSystem.url} is not loaded (loaded: ${codeSystem.version})`, { location: 'version' });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// $validate-code

export interface ValidateCodeInput {
  /** The code system's url (`url`, or `system` of a coding). */
  url: string;
  code: string;
  version?: string;
  display?: string;
}

export async function validateCode(db: Queryable, input: ValidateCodeInput): Promise<Parameters> {
  const found = await readConcept(db, input.url, input.code);
  const answer = (result: boolean, message?: string, display?: string | null): Parameters => ({
    resourceType: 'Parameters',
    parameter: [
      { name: 'result', valueBoolean: result },
      ...(message ? [{ name: 'message', valueString: message }] : []),
      ...(display ? [{ name: 'display', valueString: display }] : []),
    ],
  });
  if (!found) return answer(false, `code system ${input.url} is not known here`);
  if (input.version !== undefined && input.version !== found.codeSystem.version) {
    return answer(false, `version ${input.version} of code system ${input.url} is not loaded (loaded: ${found.codeSystem.version})`);
  }
  const { concept } = found;
  if (!concept) return answer(false, `code ${input.code} is not in code system ${input.url} version ${found.codeSystem.version}`);
  const display = concept.display ?? concept.code;
  if (input.display !== undefined) {
    const normalise = (s: string): string => s.trim().toLowerCase();
    const terms = [display, ...concept.designations.map((d) => d.value)].map(normalise);
    if (!terms.includes(normalise(input.display))) {
      return answer(false, `the display given is not a display of code ${input.code} in ${input.url}; the display is '${display}'`, display);
    }
  }
  return answer(true, concept.active ? undefined : `code ${input.code} is inactive in ${input.url} version ${found.codeSystem.version}`, display);
}

// ---------------------------------------------------------------------------------------------------------------
// $translate

export interface TranslateInput {
  system: string;
  code: string;
  /** Only this map (canonical url). */
  url?: string;
  /** With url: this version of the map, active or not. Default: the active version. */
  conceptMapVersion?: string;
  /** The value set the code came from: a map's sourceUri/sourceCanonical, or a system (also as `<system>?fhir_vs`). */
  source?: string;
  /** The value set a translation is sought in: a map's targetUri/targetCanonical, or a system. */
  target?: string;
  /** The code system a translation is sought in. */
  targetSystem?: string;
  /** Translate from target to source. */
  reverse?: boolean;
}

interface TranslationRow {
  map_url: string;
  map_version: string;
  source_system: string;
  source_code: string;
  target_system: string;
  target_code: string;
  target_display: string | null;
  equivalence: string;
  source_scope: string | null;
  target_scope: string | null;
}

/** An implicit value set of a whole system (`http://snomed.info/sct?fhir_vs`) names that system. */
function systemOfValueSet(uri: string): string {
  return uri.endsWith('?fhir_vs') ? uri.slice(0, -'?fhir_vs'.length) : uri;
}

export async function translateCode(db: Queryable, input: TranslateInput): Promise<Parameters> {
  const reverse = input.reverse === true;
  if (input.url !== undefined) {
    const known = await db.query('SELECT 1 FROM concept_map WHERE url = $1 AND ($2::text IS NULL OR version = $2)', [input.url, input.conceptMapVersion ?? null]);
    if (known.rowCount === 0) {
      throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `ConceptMap ${input.url}${input.conceptMapVersion ? ` version ${input.conceptMapVersion}` : ''} is not loaded`, { location: 'url' });
    }
  }
  const [from, to] = reverse ? ['target', 'source'] : ['source', 'target'];
  const scopes = input.source !== undefined || input.target !== undefined;
  const result = await db.query<TranslationRow>(
    `SELECT e.map_url, e.map_version, e.source_system, e.source_code, e.target_system, e.target_code, e.target_display, e.equivalence,
            ${scopes ? `coalesce(m.content->>'sourceUri', m.content->>'sourceCanonical')` : 'NULL'} AS source_scope,
            ${scopes ? `coalesce(m.content->>'targetUri', m.content->>'targetCanonical')` : 'NULL'} AS target_scope
       FROM concept_map_element e JOIN concept_map m ON m.url = e.map_url AND m.version = e.map_version
      WHERE e.${from}_system = $1 AND e.${from}_code = $2
        AND ($3::text IS NULL OR m.url = $3)
        AND (CASE WHEN $3::text IS NOT NULL AND $4::text IS NOT NULL THEN m.version = $4 ELSE m.active END)
        AND ($5::text IS NULL OR e.${to}_system = $5)
      ORDER BY e.map_url, e.target_system, e.target_code, e.source_system, e.source_code`,
    [input.system, input.code, input.url ?? null, input.conceptMapVersion ?? null, input.targetSystem ?? null],
  );
  const inScope = (scope: string | undefined, declared: string | null, system: string): boolean =>
    scope === undefined || scope === declared || systemOfValueSet(scope) === system;
  const rows = result.rows.filter((r) => {
    const [sourceSide, targetSide] = reverse
      ? [{ declared: r.target_scope, system: r.target_system }, { declared: r.source_scope, system: r.source_system }]
      : [{ declared: r.source_scope, system: r.source_system }, { declared: r.target_scope, system: r.target_system }];
    return inScope(input.source, sourceSide.declared, sourceSide.system) && inScope(input.target, targetSide.declared, targetSide.system);
  });

  const matches: ParametersParameter[] = rows.map((r) => {
    const [system, code, display] = reverse ? [r.source_system, r.source_code, null] : [r.target_system, r.target_code, r.target_display];
    const part: ParametersParameter[] = [{ name: 'equivalence', valueCode: r.equivalence }];
    if (code !== '') part.push({ name: 'concept', valueCoding: display === null ? { system, code } : { system, code, display } });
    part.push({ name: 'source', valueUri: `${r.map_url}|${r.map_version}` });
    return { name: 'match', part };
  });
  const matched = rows.some((r) => !NON_MATCHING_EQUIVALENCES.has(r.equivalence) && (reverse ? r.source_code : r.target_code) !== '');
  const message = matched
    ? undefined
    : rows.length > 0
      ? `the maps say code ${input.code} of ${input.system} has no match`
      : `no ${input.url ? `version of ConceptMap ${input.url}` : 'active ConceptMap'} maps code ${input.code} of ${input.system}${input.targetSystem ? ` to ${input.targetSystem}` : ''}`;
  return {
    resourceType: 'Parameters',
    parameter: [{ name: 'result', valueBoolean: matched }, ...(message ? [{ name: 'message', valueString: message }] : []), ...matches],
  };
}

/** The FHIR CodeSystem resource describing a loaded code system (its concepts are reached through $lookup). */
export function codeSystemResource(codeSystem: StoredCodeSystem): Record<string, unknown> {
  return {
    resourceType: 'CodeSystem',
    id: canonicalId(codeSystem.url),
    url: codeSystem.url,
    version: codeSystem.version,
    name: codeSystem.name,
    ...(codeSystem.title ? { title: codeSystem.title } : {}),
    status: 'active',
    content: 'not-present',
    count: codeSystem.conceptCount,
  };
}
