/**
 * The engine's import graph, read from source with TypeScript's own pre-processor: every `import`, `import type`,
 * `export … from` and dynamic `import()` between the project's files (packages are left out). Type-only imports
 * count: a type-only circle still ties two files' meaning together, and a type import across a boundary is still a
 * dependency on the other side's model.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * Top-level folders whose files make up the engine and its console (tests, benchmarks and scripts are users of it,
 * not part of it).
 */
export const ENGINE_FOLDERS = [
  'adapters', 'anchor', 'api', 'cli', 'config', 'consent', 'errors', 'formats', 'mappers', 'observability', 'queue', 'research',
  'store', 'terminology', 'web', 'workers',
] as const;

export interface ImportEdge {
  /** Importing file, relative to the repository root with forward slashes. */
  from: string;
  /** Imported file, same form. */
  to: string;
  /** The specifier as written. */
  specifier: string;
}

function sourceFiles(root: string, folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
    }
  };
  try {
    walk(join(root, folder));
  } catch {
    // A folder that does not exist has no files.
  }
  return out;
}

const toKey = (root: string, path: string): string => relative(root, path).split(sep).join('/');

/**
 * Every edge between the engine's own files. With `packages`, imports of packages and Node built-ins are edges too,
 * their `to` being the specifier as written.
 */
export function readImportGraph(root: string, folders: readonly string[] = ENGINE_FOLDERS, options: { packages?: boolean } = {}): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const folder of folders) {
    for (const file of sourceFiles(root, folder)) {
      const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      for (const ref of info.importedFiles) {
        const specifier = ref.fileName;
        if (!specifier.startsWith('.')) {
          if (options.packages) edges.push({ from: toKey(root, file), to: specifier, specifier });
          continue;
        }
        edges.push({ from: toKey(root, file), to: toKey(root, resolve(dirname(file), specifier)), specifier });
      }
    }
  }
  return edges;
}

/** The top-level folder a file belongs to (`mappers/hl7v2/adt.ts` -> `mappers`). */
export const layerOf = (file: string): string => file.split('/')[0]!;

/**
 * The import circles among files: each strongly connected component of more than one file (or a file importing
 * itself), as a sorted list of its files. Tarjan's algorithm, iterative so deep graphs cannot overflow the stack.
 */
export function importCircles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, []);
    if (!next.has(to)) next.set(to, []);
    next.get(from)!.push(to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const circles: string[][] = [];
  let counter = 0;
  for (const start of next.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; child: number }> = [{ node: start, child: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const children = next.get(frame.node)!;
      if (frame.child < children.length) {
        const child = children[frame.child++]!;
        if (!index.has(child)) {
          index.set(child, counter);
          low.set(child, counter++);
          stack.push(child);
          onStack.add(child);
          work.push({ node: child, child: 0 });
        } else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = children.includes(frame.node);
        if (component.length > 1 || selfLoop) circles.push(component.sort());
      }
    }
  }
  return circles;
}
