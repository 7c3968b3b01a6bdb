/**
 * Hostile HL7 v2 input against the bounded parser (formats/hl7v2/limits.ts): for each shape, 16 MiB of text (the
 * default frame cap) after an ordinary MSH, parsed by parseHl7 and counted by checkHl7Limits (what the intake runs),
 * each shape in a process of its own so that one's garbage does not count against the next. Prints the outcome (parsed
 * or the error code), the time, and the peak memory the parse added (max RSS over the RSS with the input built).
 * The target: under one second and under 200 MB for every shape.
 *
 *   npx tsx bench/hl7-hostile.ts           every shape
 *   npx tsx bench/hl7-hostile.ts tilde     one shape
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { checkHl7Limits, parseHl7 } from '../formats/hl7v2/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { HOSTILE_SHAPES, hostileText } from '../test/support/hl7v2-hostile.ts';

const SIZE = 16 * 1024 * 1024;

function outcome(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (error instanceof AnchorlineError) return error.code.replace('ANCHORLINE_ERR_', '');
    return `THREW ${(error as Error).name}`;
  }
}

function measure(shape: string): void {
  const text = hostileText(shape, SIZE);
  // Flattened before timing: the input as the intake has it, one decoded string.
  text.indexOf('\u0001');
  const rssBefore = process.memoryUsage().rss;
  let started = performance.now();
  const counted = outcome(() => checkHl7Limits(text));
  const countMs = performance.now() - started;
  started = performance.now();
  const parsed = outcome(() => parseHl7(text));
  const parseMs = performance.now() - started;
  const peakMb = (process.resourceUsage().maxRSS * 1024 - rssBefore) / 1e6;
  console.log(
    `${shape.padEnd(18)} check ${counted.padEnd(16)} ${countMs.toFixed(0).padStart(5)} ms   parse ${parsed.padEnd(16)} ${parseMs.toFixed(0).padStart(5)} ms   +${Math.max(0, peakMb).toFixed(0).padStart(4)} MB peak`,
  );
}

const only = process.argv[2];
if (only !== undefined) {
  measure(only);
} else {
  console.log(`hl7-hostile: ${SIZE / 1024 / 1024} MiB per shape, default limits, one process per shape`);
  for (const shape of Object.keys(HOSTILE_SHAPES)) {
    process.stdout.write(execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), shape], { encoding: 'utf8' }));
  }
}
