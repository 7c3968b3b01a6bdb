/**
 * ICD-10-CM: the order file of the CDC/CMS code release (icd10cm_order_<year>.txt, or icd10cm-order-<month>-<year>.txt
 * in the April updates), the one file that holds every code including the category headers.
 *
 * Fixed width, one code per line (positions 1-based):
 *
 *   1-5   order number, right justified, zero filled
 *   6     blank
 *   7-13  the code, without its dot, left justified
 *   14    blank
 *   15    0 = a header (not valid for HIPAA-covered transactions), 1 = a valid, billable code
 *   16    blank
 *   17-76 short description
 *   77    blank
 *   78-   long description
 *
 * Concept: the code written with its dot after the third character (E11.9), as FHIR's ICD-10-CM system writes it;
 * display the long description; the short description as a designation when it differs; properties `notSelectable`
 * (true for headers) and `parent` (the nearest earlier code that is a prefix: E11 for E11.9, found from the file's
 * order). All codes are active: the file lists the codes of one fiscal year.
 *
 * System http://hl7.org/fhir/sid/icd-10-cm; version from --version, else from the file name (icd10cm_order_2025.txt
 * -> 2025, icd10cm-order-April-2024.txt -> April-2024). ICD-10-PCS order files share the layout but not the code
 * system and are refused (their codes are seven characters without a category letter-digit-digit start).
 */
import type { Pool } from '../../store/index.ts';
import type { ConceptDesignation, ConceptProperty } from '../store.ts';
import { PrefixParents, releaseVersion } from './common.ts';
import { TerminologyLoadError } from './errors.ts';
import { replaceCodeSystem, type LoaderOptions, type LoadSummary } from './load.ts';
import { checkDecoded, linesOf, openTextFile } from './text-input.ts';

export const ICD10CM_SYSTEM = 'http://hl7.org/fhir/sid/icd-10-cm';

export interface Icd10CmLoadOptions extends LoaderOptions {
  /** The release, e.g. '2025'. Default: from the file name. */
  version?: string;
  /** Code system url. Default http://hl7.org/fhir/sid/icd-10-cm. */
  system?: string;
  /** Character set of the file. Default utf-8 (the files are ASCII). */
  encoding?: string;
}

/** An ICD-10-CM code as the order file writes it: letter, digit, then up to five letters or digits. */
const ORDER_FILE_CODE = /^[A-Z][0-9][0-9A-Z]{1,5}$/;

export async function loadIcd10Cm(pool: Pool, file: string, options: Icd10CmLoadOptions = {}): Promise<LoadSummary> {
  const version = releaseVersion(file, options.version, [/^icd10cm[-_]order[-_](.+?)\.txt$/i, /^icd10cm[-_]?(\d{4})/i], 'ICD-10-CM');
  const observer = options.observer;
  const input = await openTextFile(file, { encoding: options.encoding ?? 'utf-8', ...(observer ? { onBytes: (n: number) => observer.bytes(n) } : {}) });
  observer?.start(input.sizeBytes);
  const meta = { url: options.system ?? ICD10CM_SYSTEM, version, name: 'ICD10CM', title: 'ICD-10-CM', sourceFormat: 'icd10' };

  return replaceCodeSystem(pool, meta, options, async (load) => {
    const parents = new PrefixParents();
    let codes = 0;
    for await (const { text, line } of linesOf(input)) {
      if (text.trim() === '') continue;
      const fail = (problem: string): never => {
        throw new TerminologyLoadError(input.path, line, problem);
      };
      checkDecoded(text, input, line);
      if (!/^\d{5}$/.test(text.slice(0, 5))) fail('columns 1-5 are not a five-digit order number (is this an ICD-10-CM order file?)');
      if (text.length < 78) {
        fail(`the line is ${text.length} characters long; an order file line runs past column 78 (order, code, header flag, short and long description): a truncated line?`);
      }
      if (text[5] !== ' ' || text[13] !== ' ' || text[15] !== ' ' || text[76] !== ' ') fail('columns 6, 14, 16 and 77 must be blank (is this the fixed-width order file?)');
      const rawCode = text.slice(6, 13).trim();
      if (!ORDER_FILE_CODE.test(rawCode)) fail(`columns 7-13 hold ${JSON.stringify(rawCode)}, not an ICD-10-CM code`);
      const flag = text[14];
      if (flag !== '0' && flag !== '1') fail(`column 15 must be 0 (header) or 1 (valid code), found ${JSON.stringify(flag)}`);
      const shortDescription = text.slice(16, 76).trim();
      const longDescription = text.slice(77).trim();
      if (longDescription === '') fail('the long description (column 78 on) is empty');

      const code = rawCode.length > 3 ? `${rawCode.slice(0, 3)}.${rawCode.slice(3)}` : rawCode;
      const designations: ConceptDesignation[] = shortDescription !== '' && shortDescription !== longDescription ? [{ language: 'en', value: shortDescription }] : [];
      const properties: ConceptProperty[] = [{ code: 'notSelectable', valueBoolean: flag === '0' }];
      const parent = parents.parentOf(code);
      if (parent !== undefined) properties.push({ code: 'parent', valueCode: parent });
      await load.addConcept({ code, display: longDescription, active: true, designations, properties });
      load.observer.rows(1);
      codes++;
    }
    if (codes === 0) throw new TerminologyLoadError(input.path, 0, 'the file holds no codes');
    return { files: [input.path] };
  });
}
