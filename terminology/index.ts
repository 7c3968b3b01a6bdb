/**
 * terminology/: code systems and their concepts, ConceptMaps from local codes to standard ones, the FHIR
 * terminology operations, the ingest enricher and the unmapped-code worklist. Public surface of the folder.
 */
export {
  upsertCodeSystem,
  insertConcepts,
  insertRelationships,
  finishCodeSystem,
  listCodeSystems,
  readConcept,
  IS_A_TYPES,
  type CodeSystemMeta,
  type ConceptInput,
  type ConceptDesignation,
  type ConceptProperty,
  type RelationshipInput,
  type StoredCodeSystem,
  type StoredConcept,
} from './store.ts';
export {
  parseConceptMap,
  normaliseFhirConceptMap,
  conceptMapFromYaml,
  conceptMapFromCsv,
  flattenConceptMap,
  formatOfFile,
  canonicalId,
  conceptMapId,
  conceptMapSha256,
  EQUIVALENCES,
  NON_MATCHING_EQUIVALENCES,
  type ConceptMapFormat,
  type ConceptMapResource,
  type ConceptMapGroup,
  type ConceptMapElement,
  type ConceptMapTarget,
  type Equivalence,
  type FlatMapping,
  type ParseOptions,
} from './concept-maps.ts';
export {
  loadConceptMap,
  storeConceptMap,
  activateConceptMap,
  listConceptMaps,
  readConceptMap,
  type StoredConceptMapInfo,
  type StoreResult,
} from './concept-map-store.ts';
export { readTerminologyVersion, terminologyVersionOf, TERMINOLOGY_VERSION_SQL } from './version.ts';
export {
  lookupCode,
  validateCode,
  translateCode,
  codeSystemResource,
  type LookupInput,
  type ValidateCodeInput,
  type TranslateInput,
  type Parameters,
  type ParametersParameter,
  type CodingValue,
} from './operations.ts';
export { createTerminologyEnricher, type TerminologyEnricher, type TerminologyEnricherOptions, type EnrichItem } from './enricher.ts';
export { listUnmapped, resolveUnmapped, type UnmappedCode, type UnmappedFilter, type ResolveInput, type ResolveResult } from './worklist.ts';
