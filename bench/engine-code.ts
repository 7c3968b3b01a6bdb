/**
 * Which code the benchmarks' engines run: compiled (dist/, as `npm start`, `anchorline` and the container image run
 * it), built first when older than the sources; or, with --sources, the TypeScript through tsx, whose CPU profiles
 * name source lines. Once warm the two cost the same CPU a request (reads by id, alternating runs: 0.613-0.653 CPU-ms
 * compiled, 0.611-0.651 through tsx); what differs is start-up, and that the build is what users run.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export function engineCode(sources: boolean | undefined): 'sources' | 'compiled' {
  if (sources) return 'sources';
  execFileSync(process.execPath, [path.join(import.meta.dirname, '..', 'scripts', 'build.mjs'), '--if-stale'], { stdio: 'inherit' });
  return 'compiled';
}
