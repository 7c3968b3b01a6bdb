/**
 * LOINC: Loinc.csv from the LOINC table distribution (LoincTable/Loinc.csv).
 *
 * The file is RFC 4180 CSV, UTF-8, with a header row; every field is quoted. Columns are found by their header name,
 * not position, because LOINC adds columns between releases. Read: LOINC_NUM, COMPONENT, PROPERTY, TIME_ASPCT,
 * SYSTEM, SCALE_TYP, METHOD_TYP, CLASS, STATUS, LONG_COMMON_NAME and SHORTNAME (required) and DisplayName (optional).
 *
 * Concept: code LOINC_NUM; display LONG_COMMON_NAME (SHORTNAME, then the six-part name, when it is empty);
 * designations SHORTNAME and DisplayName when present and different; properties COMPONENT, PROPERTY, TIME_ASPCT,
 * SYSTEM, SCALE_TYP, METHOD_TYP, CLASS and STATUS as strings.
 *
 * Status: LOINC's STATUS is ACTIVE, TRIAL, DISCOURAGED or DEPRECATED. Only DEPRECATED is loaded as inactive: a
 * deprecated term should not be used at all, while DISCOURAGED and TRIAL terms remain valid codes that messages may
 * carry (LOINC advises against new use of discouraged ones). The STATUS property keeps the distinction for whoever
 * needs it.
 *
 * System http://loinc.org; version from --version, else from a `Loinc_2.77` style file or directory name.
 */
import type { Pool } from '../../store/index.ts';
import type { ConceptDesignation, ConceptProperty } from '../store.ts';
import { releaseVersion } from './common.ts';
import { tableRows, type ColumnSpec } from './csv.ts';
import { TerminologyLoadError } from './errors.ts';
import { replaceCodeSystem, type LoaderOptions, type LoadSummary } from './load.ts';
import { openTextFile } from './text-input.ts';

export const LOINC_SYSTEM = 'http://loinc.org';

export interface LoincLoadOptions extends LoaderOptions {
  /** The LOINC release, e.g. '2.77'. Default: from the file or directory name (Loinc_2.77). */
  version?: string;
  /** Code system url. Default http://loinc.org. */
  system?: string;
}

const column = (name: string, required = true): ColumnSpec => ({ label: name, names: [name], required });

const LOINC_COLUMNS = {
  code: column('LOINC_NUM'),
  component: column('COMPONENT'),
  property: column('PROPERTY'),
  timeAspect: column('TIME_ASPCT'),
  system: column('SYSTEM'),
  scale: column('SCALE_TYP'),
  method: column('METHOD_TYP'),
  class: column('CLASS'),
  status: column('STATUS'),
  longCommonName: column('LONG_COMMON_NAME'),
  shortName: column('SHORTNAME'),
  displayName: column('DisplayName', false),
};

/** Properties in the order they are stored, with the column each comes from. */
const PROPERTY_COLUMNS = [
  ['COMPONENT', 'component'],
  ['PROPERTY', 'property'],
  ['TIME_ASPCT', 'timeAspect'],
  ['SYSTEM', 'system'],
  ['SCALE_TYP', 'scale'],
  ['METHOD_TYP', 'method'],
  ['CLASS', 'class'],
  ['STATUS', 'status'],
] as const;

const LOINC_NUM = /^\d{1,7}-\d$/;

export async function loadLoinc(pool: Pool, file: string, options: LoincLoadOptions = {}): Promise<LoadSummary> {
  const version = releaseVersion(file, options.version, [/^loinc[_-]v?(\d+\.\d+)/i], 'LOINC');
  const observer = options.observer;
  const input = await openTextFile(file, { encoding: 'utf-8', ...(observer ? { onBytes: (n: number) => observer.bytes(n) } : {}) });
  observer?.start(input.sizeBytes);
  const meta = { url: options.system ?? LOINC_SYSTEM, version, name: 'LOINC', title: 'LOINC', sourceFormat: 'loinc' };

  return replaceCodeSystem(pool, meta, options, async (load) => {
    for await (const row of tableRows(input, LOINC_COLUMNS)) {
      const value = row.value;
      const code = value('code');
      if (!LOINC_NUM.test(code)) throw new TerminologyLoadError(input.path, row.line, `LOINC_NUM ${JSON.stringify(code)} is not a LOINC code (nnnnn-n)`);

      const shortName = value('shortName');
      const sixPartName = [value('component'), value('property'), value('timeAspect'), value('system'), value('scale'), value('method')].join(':').replace(/:+$/, '');
      const display = value('longCommonName') || shortName || sixPartName;
      const designations: ConceptDesignation[] = [];
      for (const term of [shortName, value('displayName')]) {
        if (term !== '' && term !== display && !designations.some((d) => d.value === term)) designations.push({ language: 'en', value: term });
      }
      const properties: ConceptProperty[] = [];
      for (const [propertyCode, name] of PROPERTY_COLUMNS) {
        const propertyValue = value(name);
        if (propertyValue !== '') properties.push({ code: propertyCode, valueString: propertyValue });
      }
      await load.addConcept({ code, display, active: value('status').toUpperCase() !== 'DEPRECATED', designations, properties });
      load.observer.rows(1);
    }
    return { files: [input.path] };
  });
}
