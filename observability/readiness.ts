/**
 * Readiness: whether this process can do its work now. The engine adds one named check per dependency as it starts
 * it (database, queue, mapping configs, listeners); GET /readyz runs them all at once, each within a time limit.
 *
 * A check throws when its part is not ready. The reason reported is a short fixed text or an error code, never an
 * error's message: /readyz is public, and driver messages name hosts, users and sometimes values.
 */
import { isAnchorlineError } from '../errors/index.ts';

/** Thrown by a check to say what is not ready, in words safe to show anyone. */
export class NotReady extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'NotReady';
  }
}

export type ReadinessCheck = () => unknown;

export interface CheckResult {
  ready: boolean;
  /** Why not, when not. */
  reason?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();

  /** Adds (or replaces) the check called `name`. */
  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Runs every check concurrently; one that has not answered within timeoutMs counts as not ready. */
  async check(timeoutMs: number): Promise<ReadinessReport> {
    const entries = [...this.checks.entries()];
    const results = await Promise.all(entries.map(([, check]) => runCheck(check, timeoutMs)));
    const checks: Record<string, CheckResult> = {};
    entries.forEach(([name], i) => (checks[name] = results[i]!));
    return { ready: results.every((r) => r.ready), checks };
  }
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ready: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const run = (async (): Promise<CheckResult> => {
    try {
      await check();
      return { ready: true };
    } catch (error) {
      return { ready: false, reason: reasonOf(error) };
    }
  })();
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof NotReady) return error.message;
  if (isAnchorlineError(error)) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'failed';
}
