/** Small pieces the loaders share: versions from file names, the display language, parents from code prefixes. */
import path from 'node:path';
import type { ConceptDesignation } from '../store.ts';
import type { CsvRecord } from './csv.ts';
import { TerminologyLoadError } from './errors.ts';
import type { TextFile } from './text-input.ts';

/** Which term becomes the concept's display when a release has both a Korean and an English one. */
export type DisplayLanguage = 'ko' | 'en';

/**
 * The version: `given` (the --version option) when there is one, else the first capture of the first pattern that
 * matches the file's name, or failing that its folder's or the folder above (Loinc_2.77/LoincTable/Loinc.csv); else
 * an error telling how to give it.
 */
export function releaseVersion(file: string, given: string | undefined, patterns: readonly RegExp[], what: string): string {
  if (given !== undefined) {
    const trimmed = given.trim();
    if (trimmed === '') throw new TerminologyLoadError(file, 0, `the ${what} version is empty`);
    return trimmed;
  }
  const folder = path.dirname(path.resolve(file));
  for (const name of [path.basename(file), path.basename(folder), path.basename(path.dirname(folder))]) {
    for (const pattern of patterns) {
      const found = pattern.exec(name)?.[1];
      if (found) return found;
    }
  }
  throw new TerminologyLoadError(file, 0, `the ${what} version is not in the file name: give it with --version`);
}

/**
 * Parents from code prefixes, for classifications whose tables list each code after its parent (ICD-10-CM's order
 * file, KCD tables): A00 is the parent of A00.0, which is the parent of A00.01. Holds only the chain of ancestors of
 * the current code (at most a handful), so memory stays constant. A range such as A00-A09 is a node with no prefix
 * children; the codes under it get the nearest prefix ancestor, or none.
 */
export class PrefixParents {
  private readonly chain: { code: string; key: string }[] = [];

  /** The nearest earlier code that is a prefix of `code` (dots ignored), or undefined. */
  parentOf(code: string): string | undefined {
    const key = code.replace(/\./g, '');
    while (this.chain.length > 0) {
      const top = this.chain[this.chain.length - 1]!;
      if (key.length > top.key.length && key.startsWith(top.key)) break;
      this.chain.pop();
    }
    const parent = this.chain[this.chain.length - 1]?.code;
    this.chain.push({ code, key });
    return parent;
  }
}

/** A header with a Korean and an English term column may lack one of them, not both. */
export function requireTermColumn(file: TextFile, noun: 'name' | 'term'): (columns: { korean: number | undefined; english: number | undefined }, header: CsvRecord) => void {
  return (columns, header) => {
    if (columns.korean === undefined && columns.english === undefined) {
      throw new TerminologyLoadError(file.path, header.line, `the header has neither a Korean (한글명) nor an English (영문명) ${noun} column (found ${header.fields.join(', ')})`);
    }
  };
}

/** The display in `language` (else the other one), and the other language's term as a designation when both exist. */
export function bilingualTerms(names: Record<DisplayLanguage, string>, language: DisplayLanguage): { display?: string; designations: ConceptDesignation[] } {
  const other: DisplayLanguage = language === 'ko' ? 'en' : 'ko';
  const display = names[language] || names[other];
  return {
    ...(display !== '' ? { display } : {}),
    designations: names[language] !== '' && names[other] !== '' ? [{ language: other, value: names[other] }] : [],
  };
}
