#!/usr/bin/env node
// The anchorline command: runs the compiled CLI (dist/cli/main.js, see scripts/build.mjs). npm install builds dist/
// (the prepare script); in a checkout, whose sources can change after that, dist/ is built again here first when it
// is missing or older than its sources, so that the command never runs stale code. A tree without the sources (the
// container image) runs dist/ as it is.
import { existsSync } from 'node:fs';
import module from 'node:module';

// V8's compile cache: modules compiled once are read back as code on later starts (~15% less CPU to load the
// engine). Passed on in the environment, so that the worker process the engine forks uses it too.
const compileCache = module.enableCompileCache?.();
if (compileCache?.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = compileCache.directory;

if (existsSync(new URL('../cli/main.ts', import.meta.url))) {
  const { buildDist, distIsCurrent } = await import('../scripts/build.mjs');
  if (!distIsCurrent()) {
    process.stderr.write('anchorline: building dist/ (sources changed since the last build)\n');
    await buildDist();
  }
}
await import('../dist/cli/main.js');
