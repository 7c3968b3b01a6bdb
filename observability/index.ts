/**
 * Observability: the engine's metrics (a prom-client registry per engine) and its readiness checks. Adapters and
 * workers see only the narrow interfaces in types.ts; the engine (cli/engine.ts) creates one EngineMetrics and one
 * Readiness and passes them in, and api/operations.ts serves them.
 */
export { EngineMetrics, type AnchorGauges, type EngineMetricsOptions, type QueueJobGauges, type WorkerProcessGauges } from './metrics.ts';
export { NotReady, Readiness, type CheckResult, type ReadinessCheck, type ReadinessReport } from './readiness.ts';
export type { IngestMetrics, IntakeMetrics } from './types.ts';
