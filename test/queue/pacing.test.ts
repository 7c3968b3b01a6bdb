/**
 * Intake before mapping (workers/pacing.ts): IntakePressure turns the ACK latencies of each window into the share of
 * time mapping may take, and MappingPacer makes the ingest batcher rest after each batch for as long as that share
 * asks.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { IngestBatcher, type IngestOutcome } from '../../workers/ingest.ts';
import { IntakePressure, MappingPacer } from '../../workers/pacing.ts';

/** An IntakePressure whose windows the test ends itself (its timer's first turn is a minute away). */
function pressure(targetMs = 10, minDuty = 0.25): { pressure: IntakePressure; shares: number[] } {
  const shares: number[] = [];
  const p = new IntakePressure({ targetMs, minDuty, windowMs: 60_000, onDuty: (duty) => shares.push(duty) });
  return { pressure: p, shares };
}

const window = (p: IntakePressure, ms: number[]): void => {
  for (const each of ms) p.observe(each / 1_000);
  p.judge();
};

describe('IntakePressure', () => {
  it('halves the share while the p99 ACK of a window is over the target, down to its floor', () => {
    const { pressure: p, shares } = pressure(10, 0.25);
    try {
      window(p, Array(200).fill(30));
      window(p, Array(200).fill(30));
      window(p, Array(200).fill(30));
      expect(shares).toEqual([0.5, 0.25]);
      expect(p.currentDuty).toBe(0.25);
    } finally {
      p.close();
    }
  });

  it('judges a window by its p99: a single slow ACK among many fast ones does not slow mapping', () => {
    const { pressure: p, shares } = pressure(10);
    try {
      window(p, [...Array(299).fill(2), 500]);
      expect(shares).toEqual([]);
      window(p, [...Array(290).fill(2), ...Array(10).fill(500)]);
      expect(shares).toEqual([0.5]);
    } finally {
      p.close();
    }
  });

  it('gives the share back step by step once ACKs are well under the target, holds it near the target, and whole when nothing arrives', () => {
    const { pressure: p } = pressure(10, 0.25);
    try {
      window(p, Array(100).fill(50));
      window(p, Array(100).fill(50));
      expect(p.currentDuty).toBe(0.25);
      window(p, Array(100).fill(2));
      expect(p.currentDuty).toBeCloseTo(0.35);
      // Between half the target and the target: held.
      window(p, Array(100).fill(7));
      expect(p.currentDuty).toBeCloseTo(0.35);
      window(p, []);
      expect(p.currentDuty).toBe(1);
    } finally {
      p.close();
    }
  });
});

describe('IntakePressure with a bounded backlog', () => {
  it('gives mapping its whole share while more messages wait than the bound, whatever the ACKs, and cuts it again below', async () => {
    let waiting = 0;
    const shares: number[] = [];
    const p = new IntakePressure({ targetMs: 10, minDuty: 0.25, windowMs: 60_000, backlogCheckMs: 60_000, onDuty: (duty) => shares.push(duty), backlog: { max: 1_000, waiting: async () => waiting } });
    try {
      window(p, Array(100).fill(50));
      window(p, Array(100).fill(50));
      expect(p.currentDuty).toBe(0.25);
      waiting = 5_000;
      await p.checkBacklog();
      window(p, Array(100).fill(50));
      expect(p.currentDuty).toBe(1);
      waiting = 10;
      await p.checkBacklog();
      window(p, Array(100).fill(50));
      expect(p.currentDuty).toBe(0.5);
      expect(shares).toEqual([0.5, 0.25, 1, 0.5]);
    } finally {
      p.close();
    }
  });

  it('keeps the share as judged when the backlog cannot be read', async () => {
    const p = new IntakePressure({ targetMs: 10, minDuty: 0.25, windowMs: 60_000, backlogCheckMs: 60_000, onDuty: () => undefined, backlog: { max: 1, waiting: async () => Promise.reject(new Error('queue unreachable')) } });
    try {
      await p.checkBacklog();
      window(p, Array(100).fill(50));
      expect(p.currentDuty).toBe(0.5);
    } finally {
      p.close();
    }
  });
});

describe('MappingPacer', () => {
  it('does not rest at a full share, rests elapsed × (1 − share) / share below it, at most maxRestMs', async () => {
    const pacer = new MappingPacer({ maxRestMs: 150 });
    const timed = async (elapsedMs: number): Promise<number> => {
      const started = performance.now();
      await pacer.rest(elapsedMs);
      return performance.now() - started;
    };
    expect(await timed(100)).toBeLessThan(20);
    pacer.setDuty(0.5);
    expect(await timed(60)).toBeGreaterThanOrEqual(55);
    pacer.setDuty(0.25);
    expect(await timed(20)).toBeGreaterThanOrEqual(55);
    // 3 × 100 ms would be 300: capped.
    const capped = await timed(100);
    expect(capped).toBeGreaterThanOrEqual(145);
    expect(capped).toBeLessThan(1_000);
  });

  it('ends a rest at once when the share is whole again, or when released', async () => {
    const pacer = new MappingPacer({ maxRestMs: 60_000 });
    pacer.setDuty(0.05);
    const started = performance.now();
    const resting = pacer.rest(10_000);
    setTimeout(() => pacer.setDuty(1), 30);
    await resting;
    expect(performance.now() - started).toBeLessThan(5_000);
    pacer.setDuty(0.05);
    const again = pacer.rest(10_000);
    pacer.release();
    await again;
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('IngestBatcher with a pacer', () => {
  it('starts the next batch only after the rest its share asks for, and answers every job', async () => {
    const pacer = new MappingPacer();
    pacer.setDuty(0.25);
    const starts: number[] = [];
    const batcher = new IngestBatcher({ maxBatchMessages: 5, batchesInFlight: 1, pacer }, async (ids) => {
      starts.push(performance.now());
      await new Promise((resolve) => setTimeout(resolve, 20));
      return ids.map((): IngestOutcome => ({ status: 'mapped', resources: [] }));
    });
    const outcomes = await Promise.all(Array.from({ length: 15 }, (_, i) => batcher.submit(i + 1, false)));
    expect(outcomes).toHaveLength(15);
    expect(outcomes.every((o) => o.status === 'mapped')).toBe(true);
    expect(starts).toHaveLength(3);
    // Each batch took ~20 ms; at a quarter share the next starts ~60 ms after it ended, ~80 ms after it started.
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(70);
  });
});
