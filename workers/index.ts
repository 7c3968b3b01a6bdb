/** Workers: the jobs that run on the queue (ingest, anchor, chain anchor, sweeper), the mapping registry that keeps mapping configs current, and the mapping dry run. */
export * from '../queue/index.ts';
export {
  createIngestHandler,
  ingestMessages,
  staticMappingSource,
  type IngestOptions,
  type IngestOutcome,
  type MappingSelection,
  type MappingSource,
  type MessageConverter,
  type TerminologyEnricher,
} from './ingest.ts';
export { createDicomConverter, type DicomConverterOptions } from './dicom-converter.ts';
export { createCdaConverter, type CdaConverterOptions } from './cda-converter.ts';
export { createMessagePatientReader, type MessagePatientReaderOptions } from './message-patients.ts';
export { Sweeper, type SweeperOptions } from './sweeper.ts';
export { ResearchProjector, ResearchRefresher, type ProjectionReport, type ResearchProjectorOptions, type ResearchRefresherOptions } from './research-refresh.ts';
export {
  diffMessage,
  jsonDiff,
  mapMessage,
  splitMessages,
  type CorpusMessage,
  type JsonChange,
  type MessageDiff,
  type MessageMapping,
} from './mapping-dry-run.ts';
export { AnchorWorker, loadSigningKey, type AnchorWorkerOptions } from './anchor.ts';
// The chain anchor driver is loaded only where the 'evm' driver is configured (loadChainAnchoring): viem takes
// ~0.7 s to load, which an engine without chain anchoring should not pay at every start.
export type { ChainAnchorDriver, ChainAnchorOptions, StepOutcome } from './chain-anchor.ts';
export const loadChainAnchoring = (): Promise<typeof import('./chain-anchor.ts')> => import('./chain-anchor.ts');
export {
  DEFAULT_MAPPING_POLL_INTERVAL_MS,
  MappingRegistry,
  defaultMappingConfigDir,
  listMappingConfigs,
  rollbackMappingConfig,
  type MappingConfigListing,
  type MappingRegistryOptions,
} from './mapping-registry.ts';
export { IntakePressure, MappingPacer, type IntakePressureOptions } from './pacing.ts';
