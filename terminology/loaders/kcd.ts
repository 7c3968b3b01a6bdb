/**
 * KCD-8 / KCD-9 (Statistics Korea's Korean Standard Classification of Diseases, 한국표준질병·사인분류): the
 * classification table saved as CSV.
 *
 * KOSTAT distributes the table as a spreadsheet; saved as CSV it has a header row with Korean column names. Columns
 * are found by name (compared ignoring spaces, case and punctuation):
 *   code     코드, 질병코드, 분류코드, 상병코드, 질병분류코드, KCD코드, code          (required)
 *   Korean   한글명, 한글명칭, 한글병명, 국문명, 한글, korean                       (this or English required)
 *   English  영문명, 영문명칭, 영문병명, 영문, english
 * Other columns are ignored. Codes are kept as the table writes them (A00.0, the dotted form KR Core examples use).
 *
 * Character set: UTF-8 (with or without BOM) or EUC-KR/CP949, as the spreadsheet program saved it; detected unless
 * --encoding says (see text-input.ts).
 *
 * Concept: display in the --language chosen (default ko, the classification's own language; the other name when
 * that one is empty), the other name as a designation with its language; property `parent` from code prefixes
 * (A00 for A00.0) when the table lists parents first, as KOSTAT's does.
 *
 * System: KR Core's URI for KCD-8, http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8, and the same pattern for other
 * editions (kostat-kcd-9; KR Core 2.0 defines KCD-8 only). Version: the edition, '8' or '9', from --version or the
 * file name (kcd-8.csv, KCD9_..., 제9차_...).
 */
import type { Pool } from '../../store/index.ts';
import type { ConceptProperty } from '../store.ts';
import { bilingualTerms, PrefixParents, releaseVersion, requireTermColumn, type DisplayLanguage } from './common.ts';
import { tableRows, type ColumnSpec } from './csv.ts';
import { TerminologyLoadError } from './errors.ts';
import { replaceCodeSystem, type LoaderOptions, type LoadSummary } from './load.ts';
import { openTextFile } from './text-input.ts';

/** The KR Core code system URI of a KCD edition ('8' -> http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8). */
export function kcdSystem(edition: string): string {
  return `http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-${edition}`;
}

export interface KcdLoadOptions extends LoaderOptions {
  /** The edition: '8' or '9'. Default: from the file name. */
  version?: string;
  /** Code system url. Default kcdSystem(version). */
  system?: string;
  /** Input character set, or 'auto' (default): BOM, else UTF-8 when valid, else CP949. */
  encoding?: string;
  /** Display language. Default 'ko'. */
  language?: DisplayLanguage;
}

const KCD_COLUMNS = {
  code: { label: 'code (코드)', names: ['코드', '질병코드', '분류코드', '상병코드', '질병분류코드', 'KCD코드', 'code', 'kcd_code'], required: true },
  korean: { label: 'Korean name (한글명)', names: ['한글명', '한글명칭', '한글병명', '국문명', '한글', 'korean', 'name_ko'], required: false },
  english: { label: 'English name (영문명)', names: ['영문명', '영문명칭', '영문병명', '영문', 'english', 'name_en'], required: false },
} satisfies Record<string, ColumnSpec>;

/** A KCD code or range: a letter, then no spaces (A00, A00.0, A00-A09, A17.0†, G01*). */
export const KCD_CODE = /^[A-Z][^\s]*$/i;

export async function loadKcd(pool: Pool, file: string, options: KcdLoadOptions = {}): Promise<LoadSummary> {
  const version = releaseVersion(file, options.version, [/kcd[-_ ]?(\d{1,2})(?!\d)/i, /제\s*(\d{1,2})\s*차/], 'KCD edition');
  if (!/^\d{1,2}$/.test(version)) throw new TerminologyLoadError(file, 0, `the KCD edition must be a number such as 8 or 9, not ${JSON.stringify(version)}`);
  const language = options.language ?? 'ko';
  const observer = options.observer;
  const input = await openTextFile(file, { encoding: options.encoding ?? 'auto', ...(observer ? { onBytes: (n: number) => observer.bytes(n) } : {}) });
  observer?.start(input.sizeBytes);
  const meta = { url: options.system ?? kcdSystem(version), version, name: `KOSTAT_KCD_${version}`, title: `KOSTAT KCD-${version}`, sourceFormat: 'kcd' };

  return replaceCodeSystem(pool, meta, options, async (load) => {
    let codes = 0;
    const parents = new PrefixParents();
    for await (const row of tableRows(input, KCD_COLUMNS, requireTermColumn(input, 'name'))) {
      const code = row.value('code');
      const names = { ko: row.value('korean'), en: row.value('english') };
      if (code === '' && names.ko === '' && names.en === '') continue;
      if (code === '') throw new TerminologyLoadError(input.path, row.line, 'the row has names but no code');
      if (!KCD_CODE.test(code)) throw new TerminologyLoadError(input.path, row.line, `${JSON.stringify(code)} in the code column is not a KCD code (are the columns shifted?)`);

      const properties: ConceptProperty[] = [];
      const parent = parents.parentOf(code);
      if (parent !== undefined) properties.push({ code: 'parent', valueCode: parent });
      await load.addConcept({ code, ...bilingualTerms(names, language), active: true, properties });
      load.observer.rows(1);
      codes++;
    }
    if (codes === 0) throw new TerminologyLoadError(input.path, 0, 'the file holds no codes');
    return { files: [input.path] };
  });
}
