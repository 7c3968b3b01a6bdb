/**
 * The intake reads a document's header without converting it (readCdaHeader). Over every fixture in
 * test/fixtures/cda it must agree with the conversion the worker runs later: a document refused at the door is one
 * the conversion refuses with the same code and location, and an accepted one is stored under the facts and charset
 * the conversion finds.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { isAnchorlineError } from '../../errors/index.ts';
import { convertCdaDocument, readCdaHeader, type CdaConversionOptions } from '../../mappers/cda/index.ts';
import { defaultHl7MappingOptions } from '../../mappers/index.ts';
import { parseJson } from '../../anchor/index.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda');
const names = readdirSync(ROOT).filter((file) => file.endsWith('.xml')).map((file) => file.slice(0, -'.xml'.length)).sort();

function limitsOf(name: string): CdaConversionOptions['limits'] {
  const at = path.join(ROOT, `${name}.options.json`);
  return existsSync(at) ? (parseJson(readFileSync(at, 'utf8')) as { limits?: CdaConversionOptions['limits'] }).limits : undefined;
}

function outcome(run: () => unknown): { code: string; location?: string } | 'ok' {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (!isAnchorlineError(error)) throw error;
    return { code: error.code, ...(error.location ? { location: error.location } : {}) };
  }
}

describe('readCdaHeader', () => {
  for (const name of names) {
    it(`${name}: refuses what the conversion refuses, and stores the rest under the conversion's facts`, () => {
      const raw = readFileSync(path.join(ROOT, `${name}.xml`));
      const limits = limitsOf(name);
      const header = outcome(() => readCdaHeader(raw, limits ? { limits } : {}));
      const conversion = outcome(() => convertCdaDocument(raw, { mapping: defaultHl7MappingOptions, ...(limits ? { limits } : {}), source: { sha256: createHash('sha256').update(raw).digest(), size: raw.length } }));
      expect(header).toEqual(conversion);
      if (header !== 'ok') return;
      const read = readCdaHeader(raw, limits ? { limits } : {});
      const converted = convertCdaDocument(raw, { mapping: defaultHl7MappingOptions, ...(limits ? { limits } : {}) });
      expect(read.document).toEqual(converted.document);
      expect(read.charset).toBe(converted.charset);
      expect(read.patientId).toBe(converted.patientId);
    });
  }
});
