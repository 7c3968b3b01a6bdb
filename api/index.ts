/** The HTTP API: FHIR REST, HL7 v2 over HTTP, admin. */
export { buildApi, type ApiOptions } from './server.ts';
export { TokenIssuer, type TokenClaims } from './oauth.ts';
export { Access, parseScopeList, type Principal, type RouteScope } from './access.ts';
export { capabilityStatement, parseSearch, FHIR_JSON } from './fhir.ts';
export { buildProofBundle } from './proofs.ts';
export { openSealedExport, JOSE_COMPACT } from './sealed-export.ts';
export { ConsentGate, type ConsentGateOptions, type ConsentSource } from './consent-gate.ts';
export { DICOM_JSON, type DicomWebOptions } from './dicomweb.ts';
export { registerOpenApi, routesOf, type RouteSummary } from './openapi.ts';
export { operationalStats, startWorkerOperationsServer, type OperationalStats, type OperationsOptions, type WorkerOperationsServer } from './operations.ts';
