/**
 * CPU time per unit of work (message, request) of a benchmark's processes, from /proc: what a change to a pipeline is
 * measured by on a shared machine, where wall-clock rates swing with whatever else runs and CPU time per unit does not.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { ChildEngine } from '../test/support/child-engine.ts';

/**
 * CPU time of the benchmark's processes, read from /proc (Linux only; elsewhere `cpu:` lines are left out with a
 * note). A process tree's time is each member's user + system time plus the time of its children it has reaped
 * (cutime, cstime), so a PostgreSQL backend that exits during a phase still counts, in the postmaster's share.
 */
export class CpuMeter {
  /** Clock ticks a second of /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux almost everywhere). */
  private readonly ticksPerSecond: number;

  private constructor(ticksPerSecond: number) {
    this.ticksPerSecond = ticksPerSecond;
  }

  static open(): CpuMeter | undefined {
    if (process.platform !== 'linux') return undefined;
    try {
      readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    let ticks = 100;
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // getconf missing: the kernel's USER_HZ is 100 on every common Linux.
    }
    return new CpuMeter(ticks);
  }

  /**
   * CPU ms so far of each named process tree (root pid); a tree stops where another named root begins, so the
   * embedded PostgreSQL under the intake process counts once, as PostgreSQL. The load generator is this process.
   */
  sample(roots: ReadonlyMap<string, number>): Map<string, number> {
    const table = new Map<number, { parent: number; ticks: number }>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      // After the command name in parentheses (which may hold spaces): state, ppid, ... utime (14), stime, cutime, cstime.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(name), { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) });
    }
    const children = new Map<number, number[]>();
    for (const [pid, { parent }] of table) {
      const list = children.get(parent);
      if (list) list.push(pid);
      else children.set(parent, [pid]);
    }
    const rootPids = new Set(roots.values());
    const out = new Map<string, number>();
    for (const [label, root] of roots) {
      let ticks = 0;
      const stack = [root];
      while (stack.length > 0) {
        const pid = stack.pop()!;
        ticks += table.get(pid)?.ticks ?? 0;
        for (const child of children.get(pid) ?? []) if (!rootPids.has(child)) stack.push(child);
      }
      out.set(label, (ticks * 1000) / this.ticksPerSecond);
    }
    // This process, in microseconds rather than ticks.
    const own = process.cpuUsage();
    out.set('load generator', (own.user + own.system) / 1000);
    return out;
  }
}

/**
 * The `cpu:` line of a phase: CPU-ms per message (or request) of each process between two samples, the total, and the
 * rate the total allows on this machine's cores. Returns the CPU-ms per unit by process.
 */
export function printCpuBudget(phase: string, before: Map<string, number>, after: Map<string, number>, messages: number, unit = 'message'): Map<string, number> {
  const perUnit = new Map<string, number>();
  const cores = os.availableParallelism();
  const parts: string[] = [];
  let total = 0;
  for (const [label, ms] of after) {
    const perMessage = (ms - (before.get(label) ?? 0)) / messages;
    total += perMessage;
    perUnit.set(label, perMessage);
    parts.push(`${label} ${perMessage.toFixed(3)}`);
  }
  console.log(
    `cpu:     ${phase}: CPU-ms per ${unit}: ${parts.join(', ')}; total ${total.toFixed(3)} -> at most ${((cores * 1000) / total).toFixed(0)} ${unit === 'message' ? 'msg' : 'req'}/s on ${cores} cores ` +
      `(load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`,
  );
  return perUnit;
}

/** The embedded PostgreSQL's postmaster pid, from the child engine's log; undefined when it uses DATABASE_URL. */
export function embeddedPostgresPid(engine: ChildEngine): number | undefined {
  return engine.logs.find((entry) => entry.msg === 'embedded postgres: ready')?.postgresPid as number | undefined;
}

/**
 * The processes a child engine's CPU time is counted for, by label: the engine (with its worker process, unless that
 * runs apart) under `label`, and its embedded PostgreSQL.
 */
export function engineRoots(engine: ChildEngine, label = 'engine'): Map<string, number> {
  const postgresPid = embeddedPostgresPid(engine);
  return new Map<string, number>([[label, engine.process.pid!], ...(postgresPid === undefined ? [] : [['PostgreSQL', postgresPid] as [string, number]])]);
}

/**
 * Runs one phase of work against a child engine and prints its cpu: line; `cpu` is the server's CPU-ms per unit (the
 * engine with its worker process, and PostgreSQL; not this load generator), undefined without /proc.
 */
export async function engineCpu<T>(meter: CpuMeter | undefined, engine: ChildEngine, phase: string, unit: string, work: () => Promise<{ result: T; units: number }>): Promise<{ result: T; cpu: number | undefined }> {
  const roots = engineRoots(engine);
  const before = meter?.sample(roots);
  const { result, units } = await work();
  const after = meter?.sample(roots);
  if (before === undefined || after === undefined) return { result, cpu: undefined };
  const perUnit = printCpuBudget(phase, before, after, units, unit);
  return { result, cpu: (perUnit.get('engine') ?? 0) + (perUnit.get('PostgreSQL') ?? 0) };
}
