/**
 * The ingest batcher: jobs running together become batches of at most maxBatchMessages; up to batchesInFlight
 * batches run at once, so that one is mapped while another is written; a batch holding a retry runs with nothing
 * beside it.
 */
import { describe, expect, it } from 'vitest';
import { IngestBatcher, type IngestOutcome } from '../../workers/ingest.ts';

interface Run {
  ids: number[];
  alone: number[];
  /** Batches running when this one started, itself included. */
  concurrent: number;
}

/** A batcher whose batches take `ms` each and record what ran beside them. */
function recordingBatcher(options: { maxBatchMessages?: number; batchesInFlight?: number }, ms = 20): { batcher: IngestBatcher; runs: Run[]; peak: () => number } {
  const runs: Run[] = [];
  let running = 0;
  let peak = 0;
  const batcher = new IngestBatcher(options, async (ids, alone) => {
    running++;
    peak = Math.max(peak, running);
    runs.push({ ids, alone: [...alone], concurrent: running });
    await new Promise((resolve) => setTimeout(resolve, ms));
    running--;
    return ids.map((): IngestOutcome => ({ status: 'mapped', resources: [] }));
  });
  return { batcher, runs, peak: () => peak };
}

describe('IngestBatcher', () => {
  it('runs up to batchesInFlight batches at once, each of at most maxBatchMessages, every job answered once', async () => {
    const { batcher, runs, peak } = recordingBatcher({ maxBatchMessages: 10, batchesInFlight: 2 });
    const ids = Array.from({ length: 55 }, (_, i) => i + 1);
    const outcomes = await Promise.all(ids.map((id) => batcher.submit(id, false)));
    expect(outcomes.every((o) => o.status === 'mapped')).toBe(true);
    expect(peak()).toBe(2);
    expect(runs.every((r) => r.ids.length <= 10)).toBe(true);
    // Every job in exactly one batch, in the order submitted.
    expect(runs.flatMap((r) => r.ids)).toEqual(ids);
  });

  it('runs one batch at a time when batchesInFlight is 1', async () => {
    const { batcher, peak } = recordingBatcher({ maxBatchMessages: 10, batchesInFlight: 1 });
    await Promise.all(Array.from({ length: 35 }, (_, i) => batcher.submit(i + 1, false)));
    expect(peak()).toBe(1);
  });

  it('starts a batch holding a retry only when nothing else runs, and nothing beside it', async () => {
    const { batcher, runs } = recordingBatcher({ maxBatchMessages: 5, batchesInFlight: 2 });
    const first = Array.from({ length: 10 }, (_, i) => batcher.submit(i + 1, false));
    // The retry arrives while two batches are in flight; more jobs arrive after it.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const retry = batcher.submit(100, true);
    const after = Array.from({ length: 10 }, (_, i) => batcher.submit(200 + i, false));
    await Promise.all([...first, retry, ...after]);
    const withRetry = runs.find((r) => r.ids.includes(100))!;
    expect(withRetry.alone).toEqual([100]);
    expect(withRetry.concurrent).toBe(1);
    // Nothing started while it ran: the batch after it began alone too, or beside the next batch only.
    const index = runs.indexOf(withRetry);
    expect(runs.slice(0, index).flatMap((r) => r.ids)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(runs[index + 1]!.concurrent).toBe(1);
  });

  it('answers a failed batch with its error and goes on with the next', async () => {
    let calls = 0;
    const batcher = new IngestBatcher({ maxBatchMessages: 2, batchesInFlight: 2 }, async (ids) => {
      calls++;
      if (ids.includes(3)) throw new Error('batch failed');
      return ids.map((): IngestOutcome => ({ status: 'mapped', resources: [] }));
    });
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((id) => batcher.submit(id, false)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect(calls).toBe(3);
  });
});
