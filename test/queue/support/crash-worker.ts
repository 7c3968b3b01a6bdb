/**
 * A worker process for the dead-worker tests: it consumes one queue with a handler that reports the job it got on
 * stdout and then never finishes, so the test can SIGKILL it mid-job. Run with Node's type stripping:
 *   node test/queue/support/crash-worker.ts '<json WorkerSpec>'
 */
import { silentLogger } from '../../../config/logger.ts';
import { configSchema } from '../../../config/schema.ts';
import { createPool } from '../../../store/db.ts';
import { createQueue } from '../../../queue/index.ts';

export interface WorkerSpec {
  /** The harness's config input (driver selection, key prefix, queue settings). */
  config: unknown;
  databaseUrl: string;
  schema: string;
  queue: string;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec;
const pool = createPool({ connectionString: spec.databaseUrl, schema: spec.schema, max: 4 });
const queue = await createQueue(configSchema.parse(spec.config), pool, silentLogger());
queue.consume(
  spec.queue,
  async (data, ctx) => {
    process.stdout.write(`${JSON.stringify({ started: ctx.jobId, attempt: ctx.attempt, id: data.id })}\n`);
    await new Promise<never>(() => undefined);
  },
  { concurrency: 1 },
);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
