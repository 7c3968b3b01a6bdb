/**
 * Closed-loop HTTP load for the read benchmarks: N clients on keep-alive connections, each sending its next request
 * when the last is answered, for a fixed time. node:http rather than fetch, whose own cost would bound the rate here.
 */
import http from 'node:http';
import os from 'node:os';

export interface LoadResult {
  requestsPerSecond: number;
  /** Requests answered (any status). */
  requests: number;
  p50: number;
  p99: number;
  statuses: Map<number, number>;
}

export class HttpLoad {
  private readonly agent: http.Agent;
  private readonly port: number;

  constructor(port: number, clients: number) {
    this.port = port;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  }

  /** One GET with the given headers. */
  get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.get({ host: '127.0.0.1', port: this.port, path: url, agent: this.agent, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      request.on('error', reject);
    });
  }

  /** `clients` loops of GET urlFor(n) for `seconds`: the rate, latency percentiles and answers by status. */
  async run(clients: number, seconds: number, urlFor: (n: number) => string, headersFor: (n: number) => Record<string, string>): Promise<LoadResult> {
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    let running = true;
    let n = 0;
    const started = performance.now();
    const loops = Array.from({ length: clients }, async () => {
      while (running) {
        const i = n++;
        const at = performance.now();
        const { status } = await this.get(urlFor(i), headersFor(i));
        latencies.push(performance.now() - at);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    });
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    running = false;
    await Promise.all(loops);
    const elapsed = (performance.now() - started) / 1000;
    const sorted = latencies.sort((a, b) => a - b);
    const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
    return { requestsPerSecond: sorted.length / elapsed, requests: sorted.length, p50: at(50), p99: at(99), statuses };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The load averages, for the line each benchmark prints. */
export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** One line of a load result. */
export function describeLoad(name: string, result: LoadResult): string {
  return `${name.padEnd(28)} ${result.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${result.p50.toFixed(1)} ms  p99 ${result.p99.toFixed(1)} ms  answers ${[...result.statuses].map(([s, c]) => `${s}: ${c}`).join(', ')}`;
}
