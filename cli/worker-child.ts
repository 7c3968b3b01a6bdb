/**
 * The worker process that `start` forks (cli/worker-process.ts): waits for its config from the parent, runs the
 * `worker` role on it, reports ready, and then reports every HEARTBEAT_INTERVAL_MS that its event loop still turns.
 * It stops when the parent asks, and also when the parent is gone (the IPC channel closes): a worker left behind by
 * a killed engine would otherwise keep mapping beside the one the restarted engine starts.
 */
import { createLogger } from '../config/index.ts';
import { startEngine, type Engine } from './engine.ts';
import { HEARTBEAT_INTERVAL_MS, type WorkerChildReport, type WorkerParentCommand } from './worker-process.ts';

const report = (message: WorkerChildReport): void => {
  if (process.connected) process.send?.(message);
};

let engine: Engine | undefined;
let stopping = false;
/** How long a stop may take before the process exits anyway: the engine's shutdown grace, and a margin. */
let stopDeadlineMs = 30_000;

async function stop(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(heartbeat);
  // A close that hangs (a database that went away with the engine) must not leave this process behind.
  setTimeout(() => process.exit(exitCode), stopDeadlineMs).unref();
  try {
    await engine?.close();
  } finally {
    process.exit(exitCode);
  }
}

const heartbeat = setInterval(() => report({ type: 'alive', ...(engine?.mappingPacer ? { mappingShare: engine.mappingPacer.currentDuty } : {}) }), HEARTBEAT_INTERVAL_MS);

process.on('message', (command: WorkerParentCommand) => {
  if (command.type === 'stop') {
    void stop(0);
    return;
  }
  if (command.type === 'pace') {
    engine?.mappingPacer?.setDuty(command.duty);
    return;
  }
  if (command.type !== 'start' || engine || stopping) return;
  stopDeadlineMs = command.config.engine.shutdownGraceMs + 5_000;
  const log = createLogger({ level: command.config.log.level }).child({ process: 'worker' });
  startEngine(command.config, log, 'worker').then(
    (started) => {
      engine = started;
      if (stopping) void started.close();
      else report({ type: 'ready' });
    },
    (error: unknown) => {
      log.error({ err: (error as Error).message }, 'worker process could not start');
      report({ type: 'failed', code: (error as { code?: string }).code ?? 'ANCHORLINE_ERR_INTERNAL' });
      void stop(1);
    },
  );
});
process.on('disconnect', () => void stop(0));
// The parent's terminal may send its signals to the whole process group: the parent decides when this one stops.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => void stop(0));
