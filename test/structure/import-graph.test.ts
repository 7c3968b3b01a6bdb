/**
 * The layout is a rule, not a habit: the folders read as the pipeline (adapters: transport -> formats: grammar ->
 * mappers + terminology -> store -> anchor, wired by queue, workers, api and cli), and this test fails the build
 * when an import goes the wrong way or two files come to import each other, directly or through others. Type-only
 * imports count as imports.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENGINE_FOLDERS, importCircles, layerOf, readImportGraph, type ImportEdge } from '../support/import-graph.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * What each top-level folder may import besides itself. Anything not listed is forbidden; the issue that made this
 * layout forbids at least mappers -> adapters/store/workers/api, formats -> anything but errors, anchor ->
 * api/store/workers, store -> api, terminology -> mappers and config -> workers/api/store.
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  // Grammars: bytes in, models out, and back. Pure; they know the error catalogue and nothing else.
  formats: ['errors'],
  // Hashing, logs, proofs and their verification: runs in the CLI and in a browser, so it stands alone.
  anchor: ['errors'],
  observability: ['errors'],
  // Consent as data and the consent decision: pure, so the API, workers and tools decide alike.
  consent: ['errors'],
  // De-identification and the release risk check: pure, so that projects, refreshes and exports release alike.
  research: ['errors', 'anchor', 'consent'],
  // Pure functions from parsed inputs (and read-only terminology) to FHIR resources.
  mappers: ['formats', 'terminology', 'errors'],
  // The config schema and mapping configs: a mapping config names mapper elements and MSH fields, and its version
  // is a canonical-JSON digest (anchor). It knows nothing of the store, the queue, workers, listeners or the API.
  config: ['mappers', 'formats', 'anchor', 'errors'],
  store: ['config', 'anchor', 'consent', 'research', 'errors'],
  // Code systems and ConceptMaps keep their own tables in the store; mappers read them, never the reverse.
  terminology: ['store', 'config', 'anchor', 'errors'],
  queue: ['store', 'config', 'errors'],
  // Transport and intake: hash, commit, ACK, enqueue.
  adapters: ['formats', 'mappers', 'queue', 'store', 'config', 'observability', 'errors'],
  workers: ['formats', 'mappers', 'terminology', 'queue', 'store', 'anchor', 'config', 'consent', 'research', 'observability', 'errors'],
  api: ['adapters', 'formats', 'mappers', 'terminology', 'queue', 'workers', 'store', 'anchor', 'config', 'consent', 'research', 'observability', 'errors', 'web'],
  // The console runs in the browser: it talks to the engine over HTTP and verifies proofs with anchor/'s verifier.
  web: ['anchor'],
  cli: ['api', 'adapters', 'formats', 'mappers', 'terminology', 'queue', 'workers', 'store', 'anchor', 'config', 'consent', 'research', 'observability', 'errors', 'web'],
};

/** The format folders other folders may enter only through their index.ts (their public surface). */
const FORMAT_FOLDERS = ['formats/hl7v2', 'formats/cda', 'formats/dicom'];

const edges = readImportGraph(root);
const show = (list: readonly ImportEdge[]): string[] => list.map((e) => `${e.from} -> ${e.to}`).sort();

describe('the import graph', () => {
  it('is read from every engine folder', () => {
    // A reader that silently saw nothing would pass every rule below.
    for (const folder of ['adapters', 'formats', 'mappers', 'store', 'workers', 'api', 'cli', 'queue']) {
      expect(edges.some((e) => layerOf(e.from) === folder), folder).toBe(true);
    }
    expect(Object.keys(MAY_IMPORT).sort()).toEqual([...ENGINE_FOLDERS].sort());
  });

  it('has no import going against the layout', () => {
    const wrong = edges.filter((e) => {
      const from = layerOf(e.from);
      const to = layerOf(e.to);
      return from !== to && !(MAY_IMPORT[from] ?? []).includes(to);
    });
    expect(show(wrong)).toEqual([]);
  });

  it('has no import circle between files, type-only imports included', () => {
    expect(importCircles(edges)).toEqual([]);
  });

  it('enters each format only through its index', () => {
    const inside = (file: string, folder: string): boolean => file.startsWith(`${folder}/`);
    const wrong = edges.filter((e) =>
      FORMAT_FOLDERS.some((folder) => inside(e.to, folder) && !inside(e.from, folder) && e.to !== `${folder}/index.ts`),
    );
    expect(show(wrong)).toEqual([]);
  });

  it('keeps the formats, the consent decision and de-identification free of I/O and transport', () => {
    const transport = /^(node:)?(fs|fs\/promises|net|tls|http|https|http2|dgram|child_process|worker_threads)$|^(pg|ioredis|bullmq|fastify|dcmjs-dimse)$/;
    const offending: string[] = [];
    for (const edge of readImportGraph(root, ['formats', 'consent', 'research'], { packages: true })) {
      if (transport.test(edge.specifier)) offending.push(`${edge.from} imports ${edge.specifier}`);
    }
    expect(offending).toEqual([]);
  });
});

describe('the circle finder', () => {
  // The rules above pass vacuously if the finder cannot see a circle; these are the cases it must see.
  const edge = (from: string, to: string): ImportEdge => ({ from, to, specifier: to });

  it('finds a two-file circle, a longer one and a self-import, and nothing in a tree', () => {
    expect(importCircles([edge('a', 'b'), edge('b', 'a')])).toEqual([['a', 'b']]);
    expect(importCircles([edge('a', 'b'), edge('b', 'c'), edge('c', 'a'), edge('c', 'd')])).toEqual([['a', 'b', 'c']]);
    expect(importCircles([edge('a', 'a')])).toEqual([['a']]);
    expect(importCircles([edge('a', 'b'), edge('a', 'c'), edge('b', 'c')])).toEqual([]);
  });

  it('reads a type-only import as an edge', () => {
    // registry.ts once imported each message family, which imported its types back: a type-only circle.
    const registry = edges.filter((e) => e.from === 'mappers/hl7v2/adt.ts').map((e) => e.to);
    expect(registry).toContain('mappers/hl7v2/context.ts');
  });
});
