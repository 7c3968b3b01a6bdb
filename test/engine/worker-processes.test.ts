/**
 * `start` with workers.processes 2 forks two worker processes that map from the one queue: each maps while the other
 * is stopped, intake's pressure slows both, and one that dies is started again while the other goes on mapping (the
 * engine stays ready).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, type TestEngine, withEngineAndClient } from '../support/engine.ts';

let t: TestEngine;
let client: MllpTestClient;

withEngineAndClient(
  {
    overrides: {
      // Intake's target so low that any ACK presses it: the share it sets must reach both processes.
      workers: { isolation: 'process', processes: 2, restartDelayMs: 100, stallTimeoutMs: 30_000, intakePriority: { ackTargetMs: 1, minMappingShare: 0.25 } },
      // A job claimed by a process as it was stopped comes back to the other one soon.
      queue: { lockMs: 3_000 },
    },
  },
  (engine, mllp) => {
    t = engine;
    client = mllp;
  },
  120_000,
);

/** The parent process id of `pid`, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Sends ADTs for new patients and waits until each is found by its identifier. */
async function sendAndFind(prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const ack = await client.request(adtMessage({ controlId: `${prefix}-${i}`, mrn: `${prefix}${i}` }));
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
  }
  for (let i = 0; i < count; i++) {
    await eventually(async () => {
      const response = await fetch(`${t.httpUrl}/fhir/Patient?identifier=${prefix}${i}`, { headers: authHeaders() });
      return ((await response.json()) as { total?: number }).total === 1 ? true : undefined;
    }, 20_000, `${prefix}${i} mapped`);
  }
}

/** A metric's value from the engine's /metrics (Prometheus text), undefined when it is not there. */
async function metric(name: string): Promise<number | undefined> {
  const text = await (await fetch(`${t.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((each) => each.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const pids = (): number[] => t.engine.workerProcessPids!().filter((pid): pid is number => pid !== undefined);

describe('two worker processes', () => {
  it('forks two children of the engine, and each maps on its own while the other is stopped', async () => {
    const [first, second] = pids();
    expect(pids()).toHaveLength(2);
    expect(first).not.toBe(second);
    expect(parentOf(first!)).toBe(process.pid);
    expect(parentOf(second!)).toBe(process.pid);
    expect(await metric('anchorline_worker_processes_running')).toBe(2);
    expect(await metric('anchorline_worker_process_restarts_total')).toBe(0);
    await sendAndFind('BOTH', 5);

    for (const [stopped, label] of [[first!, 'ONLY2'], [second!, 'ONLY1']] as const) {
      process.kill(stopped, 'SIGSTOP');
      try {
        await sendAndFind(label, 5);
      } finally {
        process.kill(stopped, 'SIGCONT');
      }
    }
    expect(t.engine.workerProcessRestarts!()).toBe(0);
  }, 120_000);

  it('slows both while intake is pressed, and gives both their whole share back once it is quiet', async () => {
    let slowed = false;
    const deadline = Date.now() + 30_000;
    for (let i = 0; !slowed && Date.now() < deadline; i++) {
      await client.request(adtMessage({ controlId: `PRESS-${i}`, mrn: `PRESS${i}` }));
      // The highest share either process reports: under 1 only once both map at the lowered share.
      const share = t.engine.workerMappingShare!();
      // ...and operators see it too, while messages keep arriving.
      slowed = share !== undefined && share < 1 && share === t.engine.mappingShare!() && (await metric('anchorline_mapping_share')) === share;
    }
    expect(slowed).toBe(true);
    await eventually(async () => (t.engine.workerMappingShare!() === 1 ? true : undefined), 10_000, 'both whole again');
    expect(await metric('anchorline_mapping_share')).toBe(1);
  }, 60_000);

  it('starts a killed one again while the other maps, and the engine stays ready', async () => {
    const [killed, survivor] = pids();
    process.kill(killed!, 'SIGKILL');
    // Once the engine has seen it die, and while its successor starts (a second or so before it is ready), the other
    // one still maps: the engine stays ready.
    await eventually(async () => (pids().includes(killed!) ? undefined : true), 10_000, 'the death noticed');
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
    await sendAndFind('AFTERKILL', 5);
    await eventually(async () => (t.engine.workerProcessRestarts!() >= 1 && pids().length === 2 ? true : undefined), 30_000, 'the killed worker process replaced');
    expect(pids()).toContain(survivor);
    expect(pids()).not.toContain(killed);
    await eventually(async () => ((await metric('anchorline_worker_processes_running')) === 2 ? true : undefined), 30_000, 'both running again');
    expect(await metric('anchorline_worker_process_restarts_total')).toBe(1);
  }, 120_000);
});
