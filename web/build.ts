/**
 * Builds the web console (web/src, Preact) into static files: index.html, console.js, console.css. esbuild bundles
 * everything, the proof verifier from anchor/ and its @noble hashing included, so the console loads nothing from
 * anywhere but the engine itself.
 *
 * Runs from `npm run build:web` (scripts/build-web.ts, also before `npm start` and `npm test`) and, when the engine
 * starts without those, in-process from api/console.ts: a build takes well under a second.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const WEB_DIR = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = path.join(WEB_DIR, 'src');
/** The patient portal's sources (web/portal), built beside the console into its `portal/` folder. */
const PORTAL_SOURCE_DIR = path.join(WEB_DIR, 'portal');
/** Sources outside web/src that the bundle holds: the proof verifier. */
const SHARED_SOURCE_DIRS = [path.join(WEB_DIR, '..', 'anchor')];

/** Where `npm run build:web` puts the console, and where the engine serves it from. */
export const CONSOLE_DIST_DIR = path.join(WEB_DIR, 'dist');

/** Where in a console build the patient portal is (api/portal.ts serves it at /portal/). */
export const PORTAL_DIST_DIR = path.join(CONSOLE_DIST_DIR, 'portal');

/** Marks a complete build; its mtime is the build's time. */
const STAMP = '.built';

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>anchorline console</title>
<link rel="stylesheet" href="console.css">
</head>
<body>
<div id="app"></div>
<noscript>The anchorline console needs JavaScript.</noscript>
<script type="module" src="console.js"></script>
</body>
</html>
`;

/** The portal's page. Its scripts are beside it under /portal/, and it is also what /portal/callback answers. */
const PORTAL_INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>My health record</title>
<link rel="stylesheet" href="/portal/portal.css">
</head>
<body>
<div id="app"></div>
<noscript>The patient portal needs JavaScript.</noscript>
<script type="module" src="/portal/portal.js"></script>
</body>
</html>
`;

export interface ConsoleBuildOptions {
  /** Default CONSOLE_DIST_DIR. */
  outDir?: string;
  /**
   * The console's sources; default web/src beside this file. The compiled engine's build (scripts/build.mjs) runs
   * this file from dist/web, where there are no sources, and passes the checkout's web/src.
   */
  sourceDir?: string;
  /** Minify (default true). */
  minify?: boolean;
}

/**
 * Builds into a fresh directory next to `outDir` and then swaps it in, so a server never sees half a build and two
 * processes building at once (test files starting engines side by side) each leave a complete one.
 */
export async function buildConsole(options: ConsoleBuildOptions = {}): Promise<{ outDir: string; files: string[]; ms: number }> {
  const started = Date.now();
  const outDir = options.outDir ?? CONSOLE_DIST_DIR;
  const staging = `${outDir}.staging-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await mkdir(staging, { recursive: true });
  try {
    await build({
      entryPoints: { console: path.join(options.sourceDir ?? SOURCE_DIR, 'main.tsx') },
      outdir: staging,
      bundle: true,
      format: 'esm',
      // A Node built-in reaching the bundle is a build error: the verifier must stay browser-safe.
      platform: 'browser',
      target: ['es2022'],
      minify: options.minify ?? true,
      sourcemap: false,
      jsx: 'automatic',
      jsxImportSource: 'preact',
      legalComments: 'none',
      logLevel: 'silent',
    });
    await writeFile(path.join(staging, 'index.html'), INDEX_HTML);
    // The patient portal goes into the same staging directory, so that one swap brings both up to date together.
    await buildPortalInto(path.join(staging, 'portal'), path.join(options.sourceDir ?? SOURCE_DIR, '..', 'portal'), options.minify ?? true);
    await writeFile(path.join(staging, STAMP), new Date().toISOString() + '\n');
    await swapIn(staging, outDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return { outDir, files: ['index.html', 'console.js', 'console.css', 'portal/index.html', 'portal/portal.js', 'portal/portal.css'], ms: Date.now() - started };
}

/** The patient portal (web/portal, Preact, anchor/'s verifier bundled in like the console's): index.html, portal.js, portal.css. */
async function buildPortalInto(outDir: string, sourceDir: string, minify: boolean): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: { portal: path.join(sourceDir, 'main.tsx') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'silent',
  });
  await writeFile(path.join(outDir, 'index.html'), PORTAL_INDEX_HTML);
}

async function swapIn(staging: string, outDir: string): Promise<void> {
  const retired = `${outDir}.retired-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await rename(outDir, retired);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  try {
    await rename(staging, outDir);
  } catch (error) {
    // Another process swapped its build in between our two renames: keep theirs, it is built from the same sources.
    if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    await rm(staging, { recursive: true, force: true });
  }
  await rm(retired, { recursive: true, force: true });
}

/**
 * True when `outDir` holds a complete build at least as new as every source file. A checkout without a build, or
 * one whose sources changed since, needs a build.
 */
export async function consoleBuildIsCurrent(outDir: string = CONSOLE_DIST_DIR): Promise<boolean> {
  let built: number;
  try {
    built = (await stat(path.join(outDir, STAMP))).mtimeMs;
  } catch {
    return false;
  }
  for (const dir of [SOURCE_DIR, PORTAL_SOURCE_DIR, ...SHARED_SOURCE_DIRS]) {
    if ((await newestMtime(dir, dir === SOURCE_DIR || dir === PORTAL_SOURCE_DIR)) > built) return false;
  }
  return true;
}

async function newestMtime(dir: string, recursive: boolean): Promise<number> {
  let newest = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive) newest = Math.max(newest, await newestMtime(file, true));
    } else if (/\.(tsx?|css)$/.test(entry.name)) {
      newest = Math.max(newest, (await stat(file)).mtimeMs);
    }
  }
  return newest;
}
