/**
 * KOSTOM (Korean Standard Terminology of Medicine, 보건의료용어표준): the term table saved as CSV, one row per KOSTOM
 * concept with its mappings:
 *   code      KOSTOM코드, KOSTOM, 코드, code                               (required)
 *   Korean    한글명, 한글용어, 용어명, 한글, korean                        (this or English required)
 *   English   영문명, 영문용어, 영문, english
 *   SNOMED CT SNOMED CT, SNOMED CT 코드, SNOMED, SCTID, snomed_code          (required; may be empty in a row)
 *   KCD       KCD, KCD코드, kcd_code                                       (required; may be empty in a row)
 * A mapping cell may hold several codes separated by | or ;. Character set as for KCD (UTF-8 or EUC-KR/CP949).
 *
 * One transaction loads the KOSTOM code system and two ConceptMaps (FHIR R4, written with concept-map-writer.ts):
 *   urn:anchorline:conceptmap:kostom-to-snomed-ct   target http://snomed.info/sct, equivalence `equivalent`
 *   urn:anchorline:conceptmap:kostom-to-kcd-<n>     target the KCD edition's system, equivalence `wider`
 * both versioned with the KOSTOM release. Equivalences: the table gives none; KOSTOM terms were mapped to the SNOMED CT
 * concept with the same meaning, while a KCD code is a statistical class that holds the term along with others, so
 * the KCD target is wider than the source. A row with an empty mapping cell adds nothing to that map.
 *
 * System: KR Core (2.0) defines no KOSTOM code system. Following KR Core's pattern for Korean national code systems
 * (http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8, .../kpis-kdcode), it is http://www.hl7korea.or.kr/CodeSystem/kostom;
 * --system gives another. Version: from --version, else the file name (kostom_2024.csv -> 2024).
 */
import type { Pool } from '../../store/index.ts';
import type { ConceptMapElement, Equivalence } from '../concept-maps.ts';
import { bilingualTerms, releaseVersion, requireTermColumn, type DisplayLanguage } from './common.ts';
import { StreamedConceptMap } from './concept-map-writer.ts';
import { tableRows, type ColumnSpec } from './csv.ts';
import { TerminologyLoadError } from './errors.ts';
import { KCD_CODE, kcdSystem } from './kcd.ts';
import { replaceCodeSystem, type ConceptMapSummary, type LoaderOptions, type LoadSummary } from './load.ts';
import { SNOMED_SYSTEM } from './snomed.ts';
import { openTextFile } from './text-input.ts';

export const KOSTOM_SYSTEM = 'http://www.hl7korea.or.kr/CodeSystem/kostom';
export const KOSTOM_TO_SNOMED_MAP_URL = 'urn:anchorline:conceptmap:kostom-to-snomed-ct';
/** The url of the map from KOSTOM to a KCD edition ('8' -> urn:anchorline:conceptmap:kostom-to-kcd-8). */
export function kostomToKcdMapUrl(kcdEdition: string): string {
  return `urn:anchorline:conceptmap:kostom-to-kcd-${kcdEdition}`;
}

export interface KostomLoadOptions extends LoaderOptions {
  /** The KOSTOM release. Default: from the file name. */
  version?: string;
  /** Code system url. Default http://www.hl7korea.or.kr/CodeSystem/kostom. */
  system?: string;
  /** The KCD edition the table's KCD codes belong to. Default '8'. */
  kcdEdition?: string;
  /** Input character set, or 'auto' (default). */
  encoding?: string;
  /** Display language. Default 'ko'. */
  language?: DisplayLanguage;
}

const KOSTOM_COLUMNS = {
  code: { label: 'KOSTOM code', names: ['KOSTOM코드', 'KOSTOM', 'KOSTOM ID', '코드', 'code', 'kostom_code'], required: true },
  korean: { label: 'Korean term (한글명)', names: ['한글명', '한글용어', '용어명', '한글', '한글명칭', 'korean', 'korean_term'], required: false },
  english: { label: 'English term (영문명)', names: ['영문명', '영문용어', '영문', '영문명칭', 'english', 'english_term'], required: false },
  snomed: { label: 'SNOMED CT code', names: ['SNOMED CT', 'SNOMED CT 코드', 'SNOMED CT ID', 'SNOMEDCT', 'SNOMED', 'SCTID', 'snomed_code', 'snomed_ct_code'], required: true },
  kcd: { label: 'KCD code', names: ['KCD', 'KCD코드', 'KCD 코드', 'kcd_code'], required: true },
} satisfies Record<string, ColumnSpec>;

const SCTID = /^\d{6,18}$/;

export async function loadKostom(pool: Pool, file: string, options: KostomLoadOptions = {}): Promise<LoadSummary> {
  const version = releaseVersion(file, options.version, [/kostom[-_ ]?v?(\d[\w.]*?)(?:\.csv)?$/i], 'KOSTOM');
  const kcdEdition = options.kcdEdition ?? '8';
  const language = options.language ?? 'ko';
  const observer = options.observer;
  const input = await openTextFile(file, { encoding: options.encoding ?? 'auto', ...(observer ? { onBytes: (n: number) => observer.bytes(n) } : {}) });
  observer?.start(input.sizeBytes);
  const system = options.system ?? KOSTOM_SYSTEM;
  const meta = { url: system, version, name: 'KOSTOM', title: 'KOSTOM', sourceFormat: 'kostom' };

  return replaceCodeSystem(pool, meta, options, async (load) => {
    const toSnomed = await StreamedConceptMap.begin(
      load.db,
      {
        url: KOSTOM_TO_SNOMED_MAP_URL,
        version,
        name: 'KOSTOM_to_SNOMED_CT',
        title: 'KOSTOM to SNOMED CT',
        sourceSystem: system,
        sourceVersion: version,
        targetSystem: SNOMED_SYSTEM,
        file: input.path,
      },
      load.batchSize,
    );
    const toKcd = await StreamedConceptMap.begin(
      load.db,
      {
        url: kostomToKcdMapUrl(kcdEdition),
        version,
        name: `KOSTOM_to_KCD_${kcdEdition}`,
        title: `KOSTOM to KCD-${kcdEdition}`,
        sourceSystem: system,
        sourceVersion: version,
        targetSystem: kcdSystem(kcdEdition),
        file: input.path,
      },
      load.batchSize,
    );

    let codes = 0;
    for await (const row of tableRows(input, KOSTOM_COLUMNS, requireTermColumn(input, 'term'))) {
      const code = row.value('code');
      if (row.fields.every((field) => field.trim() === '')) continue;
      if (code === '') throw new TerminologyLoadError(input.path, row.line, 'the row has no KOSTOM code');
      if (/\s/.test(code)) throw new TerminologyLoadError(input.path, row.line, `${JSON.stringify(code)} in the code column is not a KOSTOM code (are the columns shifted?)`);

      const terms = bilingualTerms({ ko: row.value('korean'), en: row.value('english') }, language);
      const display = terms.display ?? '';
      await load.addConcept({ code, ...terms, active: true });

      const snomedCodes = mappingCodes(row.value('snomed'));
      for (const target of snomedCodes) {
        if (!SCTID.test(target)) throw new TerminologyLoadError(input.path, row.line, `${JSON.stringify(target)} in the SNOMED CT column is not a SNOMED CT concept id`);
      }
      const kcdCodes = mappingCodes(row.value('kcd'));
      for (const target of kcdCodes) {
        if (!KCD_CODE.test(target)) throw new TerminologyLoadError(input.path, row.line, `${JSON.stringify(target)} in the KCD column is not a KCD code`);
      }
      if (snomedCodes.length > 0) await toSnomed.add(element(code, display, snomedCodes, 'equivalent'), row.line);
      if (kcdCodes.length > 0) await toKcd.add(element(code, display, kcdCodes, 'wider'), row.line);
      load.observer.rows(1);
      codes++;
    }
    if (codes === 0) throw new TerminologyLoadError(input.path, 0, 'the file holds no codes');

    load.observer.phase('writing ConceptMaps');
    const conceptMaps: ConceptMapSummary[] = [];
    for (const map of [toSnomed, toKcd]) {
      const summary = await map.finish();
      if (summary) conceptMaps.push(summary);
    }
    return { files: [input.path], conceptMaps };
  });
}

/** The codes of a mapping cell: split at | or ;, trimmed, empty and repeated ones dropped. */
function mappingCodes(cell: string): string[] {
  if (cell === '') return [];
  return [...new Set(cell.split(/[|;]/).map((code) => code.trim()).filter((code) => code !== ''))];
}

function element(code: string, display: string, targets: string[], equivalence: Equivalence): ConceptMapElement {
  return { code, ...(display !== '' ? { display } : {}), target: targets.map((target) => ({ code: target, equivalence })) };
}
