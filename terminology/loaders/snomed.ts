/**
 * SNOMED CT: an RF2 snapshot (the International Edition, or a national edition such as a Korean one, which uses the
 * same format). Given a release directory (searched recursively) or the files themselves:
 *
 *   sct2_Concept_Snapshot_<ns>_<date>.txt                     one or more   id effectiveTime active moduleId definitionStatusId
 *   sct2_Description_Snapshot-<lang>_<ns>_<date>.txt          one or more   id effectiveTime active moduleId conceptId languageCode typeId term caseSignificanceId
 *   sct2_Relationship_Snapshot_<ns>_<date>.txt                one or more   id effectiveTime active moduleId sourceId destinationId relationshipGroup typeId characteristicTypeId modifierId
 *   der2_cRefset_LanguageSnapshot-<lang>_<ns>_<date>.txt      optional      id effectiveTime active moduleId refsetId referencedComponentId acceptabilityId
 *
 * UTF-8, tab separated, a header row naming the columns exactly as above, CR LF or LF line ends. Full and Delta files
 * and other refsets in the directory are ignored (given by name, they are refused).
 *
 * What is stored:
 * - concepts: every concept row (active 0 -> inactive), with properties `moduleId` and `sufficientlyDefined`;
 * - display: the preferred synonym in the display language (--language, default en), that is, a synonym
 *   (900000000000013009) marked preferred (900000000000548007) in a language refset; without language refset files,
 *   the first active synonym in file order; failing a synonym, the FSN. When --language ko finds no Korean synonym
 *   the English one is used;
 * - designations: every other active description: the FSN (900000000000003001), other synonyms, and other languages
 *   (a Korean description as language 'ko'), each with its type as `use`;
 * - relationships: active rows (IS-A 116680003 and the attributes), each (source, type, destination) once, whatever
 *   its relationship group.
 *
 * Memory: concepts and relationships go out in batches; descriptions (several per concept) are staged in a temporary
 * table in batches and applied by one set-based UPDATE that picks each concept's display and gathers its designations,
 * so nothing proportional to the release is held in this process.
 *
 * System http://snomed.info/sct; version http://snomed.info/sct/<module>/version/<date>, the edition URI form: the date
 * from the concept file names (else the latest effectiveTime), the module the edition's own concepts are in (the most
 * frequent module outside the International core and model component modules; the core module
 * 900000000000207008 when there is none). --version gives the whole URI instead.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Pool, PoolClient } from '../../store/index.ts';
import type { DisplayLanguage } from './common.ts';
import { TerminologyLoadError } from './errors.ts';
import { replaceCodeSystem, type CodeSystemLoad, type LoaderOptions, type LoadSummary } from './load.ts';
import { checkDecoded, linesOf, openTextFile, type TextFile } from './text-input.ts';

export const SNOMED_SYSTEM = 'http://snomed.info/sct';

export const SNOMED = {
  isA: '116680003',
  fullySpecifiedName: '900000000000003001',
  synonym: '900000000000013009',
  definition: '900000000000550004',
  preferred: '900000000000548007',
  sufficientlyDefined: '900000000000073002',
  coreModule: '900000000000207008',
  modelComponentModule: '900000000000012004',
} as const;

export interface SnomedLoadOptions extends LoaderOptions {
  /** The version URI. Default: http://snomed.info/sct/<module>/version/<date> as found in the release. */
  version?: string;
  /** Code system url. Default http://snomed.info/sct. */
  system?: string;
  /** Language of the display. Default 'en'. */
  language?: DisplayLanguage;
}

type Rf2Kind = 'concept' | 'description' | 'relationship' | 'language';

const RF2_HEADERS: Record<Rf2Kind, readonly string[]> = {
  concept: ['id', 'effectiveTime', 'active', 'moduleId', 'definitionStatusId'],
  description: ['id', 'effectiveTime', 'active', 'moduleId', 'conceptId', 'languageCode', 'typeId', 'term', 'caseSignificanceId'],
  relationship: ['id', 'effectiveTime', 'active', 'moduleId', 'sourceId', 'destinationId', 'relationshipGroup', 'typeId', 'characteristicTypeId', 'modifierId'],
  language: ['id', 'effectiveTime', 'active', 'moduleId', 'refsetId', 'referencedComponentId', 'acceptabilityId'],
};

const RF2_FILE_NAMES: Record<Rf2Kind, RegExp> = {
  concept: /^sct2_Concept_Snapshot_.+\.txt$/i,
  description: /^sct2_Description_Snapshot-[A-Za-z-]+_.+\.txt$/i,
  relationship: /^sct2_Relationship_Snapshot_.+\.txt$/i,
  language: /^der2_cRefset_LanguageSnapshot-[A-Za-z-]+_.+\.txt$/i,
};

/** Release files found for a load, each kind in name order. */
export interface Rf2Files {
  concept: string[];
  description: string[];
  relationship: string[];
  language: string[];
}

const SCTID = /^\d{6,18}$/;
const EFFECTIVE_TIME = /^\d{8}$/;

/** The RF2 snapshot files under the given directories and files. Throws naming what is missing or not recognised. */
export async function findRf2Files(paths: readonly string[]): Promise<Rf2Files> {
  const found: Rf2Files = { concept: [], description: [], relationship: [], language: [] };
  const classify = (file: string, given: boolean): void => {
    const name = path.basename(file);
    for (const kind of Object.keys(RF2_FILE_NAMES) as Rf2Kind[]) {
      if (RF2_FILE_NAMES[kind].test(name)) {
        found[kind].push(file);
        return;
      }
    }
    if (given) {
      const hint = /_(Full|Delta)[-_]/i.test(name) ? ' (give the Snapshot file: Full and Delta files are not loaded)' : '';
      throw new TerminologyLoadError(file, 0, `is not an RF2 snapshot concept, description, relationship or language refset file${hint}`);
    }
  };
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) classify(full, false);
    }
  };
  for (const given of paths) {
    let info;
    try {
      info = await stat(given);
    } catch (error) {
      throw new TerminologyLoadError(given, 0, `cannot be read: ${(error as Error).message}`, { cause: error });
    }
    if (info.isDirectory()) await walk(given);
    else classify(given, true);
  }
  const where = paths.join(', ');
  if (found.concept.length === 0) throw new TerminologyLoadError(where, 0, 'no sct2_Concept_Snapshot_*.txt file found');
  if (found.description.length === 0) throw new TerminologyLoadError(where, 0, 'no sct2_Description_Snapshot-*_*.txt file found');
  if (found.relationship.length === 0) throw new TerminologyLoadError(where, 0, 'no sct2_Relationship_Snapshot_*.txt file found');
  return found;
}

export async function loadSnomedRf2(pool: Pool, paths: readonly string[], options: SnomedLoadOptions = {}): Promise<LoadSummary> {
  const files = await findRf2Files(paths);
  const language = options.language ?? 'en';
  const observer = options.observer;
  const onBytes = observer ? { onBytes: (n: number) => observer.bytes(n) } : {};
  const open = (file: string): Promise<TextFile> => openTextFile(file, { encoding: 'utf-8', ...onBytes });
  const inputs = {
    concept: await Promise.all(files.concept.map(open)),
    description: await Promise.all(files.description.map(open)),
    relationship: await Promise.all(files.relationship.map(open)),
    language: await Promise.all(files.language.map(open)),
  };
  const all = [...inputs.concept, ...inputs.language, ...inputs.description, ...inputs.relationship];
  observer?.start(all.reduce((sum, file) => sum + file.sizeBytes, 0));

  // The version is known only once the concepts are read (their modules); the row starts with a provisional one
  // and is updated before the commit.
  const system = options.system ?? SNOMED_SYSTEM;
  const meta = { url: system, version: options.version ?? 'loading', name: 'SNOMED_CT', title: 'SNOMED CT', sourceFormat: 'snomed-rf2' };

  return replaceCodeSystem(pool, meta, options, async (load) => {
    const release = { modules: new Map<string, number>(), latestEffectiveTime: '' };
    for (const file of inputs.concept) await loadConcepts(load, file, release);
    await load.flush();

    await createStagingTables(load.db);
    for (const file of inputs.language) await stageLanguageRefset(load, file);
    let sequence = 0;
    for (const file of inputs.description) sequence = await stageDescriptions(load, file, sequence);
    load.observer.phase('applying descriptions');
    await applyDescriptions(load.db, system, language);

    for (const file of inputs.relationship) await loadRelationships(load, file);

    const version = options.version ?? editionVersion(files.concept, release);
    return { files: all.map((file) => file.path), version };
  });
}

/** The edition URI of the release: see the header comment. */
function editionVersion(conceptFiles: string[], release: { modules: Map<string, number>; latestEffectiveTime: string }): string {
  const dates = conceptFiles.map((file) => /_(\d{8})\.txt$/i.exec(path.basename(file))?.[1]).filter((date): date is string => date !== undefined);
  const date = dates.sort().at(-1) ?? release.latestEffectiveTime;
  let module: string = SNOMED.coreModule;
  let most = 0;
  for (const [candidate, count] of release.modules) {
    if (candidate === SNOMED.coreModule || candidate === SNOMED.modelComponentModule) continue;
    if (count > most || (count === most && candidate < module)) {
      module = candidate;
      most = count;
    }
  }
  return `${SNOMED_SYSTEM}/${module}/version/${date}`;
}

interface Rf2Row {
  fields: string[];
  line: number;
}

/** The data rows of an RF2 file after checking its header; each row has exactly the header's number of fields. */
async function* rf2Rows(file: TextFile, kind: Rf2Kind): AsyncGenerator<Rf2Row> {
  const header = RF2_HEADERS[kind];
  let sawHeader = false;
  for await (const { text, line } of linesOf(file)) {
    if (!sawHeader) {
      const found = text.split('\t');
      if (found.length !== header.length || found.some((name, i) => name !== header[i])) {
        throw new TerminologyLoadError(file.path, line, `the header is not that of an RF2 ${kind} file: expected "${header.join(' ')}", found "${found.join(' ')}"`);
      }
      sawHeader = true;
      continue;
    }
    if (text === '') continue;
    const fields = text.split('\t');
    if (fields.length !== header.length) {
      const hint = fields.length < header.length ? ' (a truncated line?)' : '';
      throw new TerminologyLoadError(file.path, line, `expected ${header.length} tab-separated fields, found ${fields.length}${hint}`);
    }
    checkDecoded(text, file, line);
    if (!EFFECTIVE_TIME.test(fields[1]!)) throw new TerminologyLoadError(file.path, line, `effectiveTime ${JSON.stringify(fields[1])} is not a YYYYMMDD date`);
    if (fields[2] !== '0' && fields[2] !== '1') throw new TerminologyLoadError(file.path, line, `active must be 0 or 1, found ${JSON.stringify(fields[2])}`);
    yield { fields, line };
  }
  if (!sawHeader) throw new TerminologyLoadError(file.path, 0, 'the file is empty (no header row)');
}

function sctid(file: TextFile, row: Rf2Row, index: number, column: string): string {
  const value = row.fields[index]!;
  if (!SCTID.test(value)) throw new TerminologyLoadError(file.path, row.line, `${column} ${JSON.stringify(value)} is not a SNOMED CT identifier`);
  return value;
}

async function loadConcepts(load: CodeSystemLoad, file: TextFile, release: { modules: Map<string, number>; latestEffectiveTime: string }): Promise<void> {
  for await (const row of rf2Rows(file, 'concept')) {
    const code = sctid(file, row, 0, 'id');
    const module = sctid(file, row, 3, 'moduleId');
    const definitionStatus = sctid(file, row, 4, 'definitionStatusId');
    release.modules.set(module, (release.modules.get(module) ?? 0) + 1);
    if (row.fields[1]! > release.latestEffectiveTime) release.latestEffectiveTime = row.fields[1]!;
    await load.addConcept({
      code,
      active: row.fields[2] === '1',
      properties: [
        { code: 'moduleId', valueCode: module },
        { code: 'sufficientlyDefined', valueBoolean: definitionStatus === SNOMED.sufficientlyDefined },
      ],
    });
    load.observer.rows(1);
  }
}

async function createStagingTables(db: PoolClient): Promise<void> {
  await db.query(`CREATE TEMP TABLE snomed_load_description (
    description_id text NOT NULL, concept_id text NOT NULL, language text NOT NULL, type_id text NOT NULL, term text NOT NULL,
    seq bigint NOT NULL) ON COMMIT DROP`);
  await db.query('CREATE TEMP TABLE snomed_load_preferred (description_id text PRIMARY KEY) ON COMMIT DROP');
}

/** Stages the descriptions that are preferred in any language refset. */
async function stageLanguageRefset(load: CodeSystemLoad, file: TextFile): Promise<void> {
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await load.db.query('INSERT INTO snomed_load_preferred (description_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [batch]);
    batch = [];
  };
  for await (const row of rf2Rows(file, 'language')) {
    const description = sctid(file, row, 5, 'referencedComponentId');
    const acceptability = sctid(file, row, 6, 'acceptabilityId');
    load.observer.rows(1);
    if (row.fields[2] !== '1' || acceptability !== SNOMED.preferred) continue;
    batch.push(description);
    if (batch.length >= load.batchSize) await flush();
  }
  await flush();
}

/** Stages the active descriptions, numbered in file order from `sequence`; returns the next number. */
async function stageDescriptions(load: CodeSystemLoad, file: TextFile, sequence: number): Promise<number> {
  let batch = { id: [] as string[], concept: [] as string[], language: [] as string[], type: [] as string[], term: [] as string[], seq: [] as number[] };
  const flush = async (): Promise<void> => {
    if (batch.id.length === 0) return;
    await load.db.query(
      `INSERT INTO snomed_load_description (description_id, concept_id, language, type_id, term, seq)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])`,
      [batch.id, batch.concept, batch.language, batch.type, batch.term, batch.seq],
    );
    batch = { id: [], concept: [], language: [], type: [], term: [], seq: [] };
  };
  for await (const row of rf2Rows(file, 'description')) {
    const id = sctid(file, row, 0, 'id');
    const concept = sctid(file, row, 4, 'conceptId');
    const type = sctid(file, row, 6, 'typeId');
    const languageCode = row.fields[5]!;
    if (!/^[a-z]{2}(-[A-Za-z]{2,})?$/.test(languageCode)) throw new TerminologyLoadError(file.path, row.line, `languageCode ${JSON.stringify(languageCode)} is not a language code`);
    const term = row.fields[7]!;
    if (term === '') throw new TerminologyLoadError(file.path, row.line, 'the term is empty');
    load.observer.rows(1);
    if (row.fields[2] !== '1') continue;
    batch.id.push(id);
    batch.concept.push(concept);
    batch.language.push(languageCode);
    batch.type.push(type);
    batch.term.push(term);
    batch.seq.push(sequence++);
    if (batch.id.length >= load.batchSize) await flush();
  }
  await flush();
  return sequence;
}

/**
 * One statement over the staged descriptions: rank each concept's descriptions (display language first, then
 * English; synonyms before FSNs; preferred before acceptable; then file order), take the first as the display and the
 * rest, in file order, as designations.
 */
async function applyDescriptions(db: PoolClient, system: string, language: DisplayLanguage): Promise<void> {
  // Temporary tables are not analysed by autovacuum; without statistics the planner guesses their size badly.
  await db.query('ANALYZE snomed_load_description');
  await db.query('ANALYZE snomed_load_preferred');
  await db.query(
    `WITH ranked AS (
       SELECT d.concept_id, d.language, d.type_id, d.term, d.seq,
              row_number() OVER (PARTITION BY d.concept_id ORDER BY
                CASE WHEN d.language = $2 THEN 0 WHEN d.language = 'en' THEN 1 ELSE 2 END,
                CASE d.type_id WHEN $3 THEN 0 WHEN $4 THEN 1 ELSE 2 END,
                CASE WHEN p.description_id IS NULL THEN 1 ELSE 0 END,
                d.seq) AS rank
         FROM snomed_load_description d LEFT JOIN snomed_load_preferred p ON p.description_id = d.description_id
     ), terms AS (
       SELECT concept_id,
              min(term) FILTER (WHERE rank = 1) AS display,
              coalesce(jsonb_agg(jsonb_build_object(
                  'language', language,
                  'use', jsonb_build_object('system', 'http://snomed.info/sct', 'code', type_id, 'display',
                         CASE type_id WHEN $3 THEN 'Synonym' WHEN $4 THEN 'Fully specified name' WHEN $5 THEN 'Definition' ELSE 'Description' END),
                  'value', term) ORDER BY seq) FILTER (WHERE rank > 1), '[]'::jsonb) AS designations
         FROM ranked GROUP BY concept_id
     )
     UPDATE concept c SET display = t.display, designations = t.designations
       FROM terms t
      WHERE c.system = $1 AND c.code = t.concept_id`,
    [system, language, SNOMED.synonym, SNOMED.fullySpecifiedName, SNOMED.definition],
  );
}

async function loadRelationships(load: CodeSystemLoad, file: TextFile): Promise<void> {
  for await (const row of rf2Rows(file, 'relationship')) {
    const sourceCode = sctid(file, row, 4, 'sourceId');
    const destinationCode = sctid(file, row, 5, 'destinationId');
    const typeCode = sctid(file, row, 7, 'typeId');
    load.observer.rows(1);
    if (row.fields[2] !== '1') continue;
    await load.addRelationship({ sourceCode, typeCode, destinationCode });
  }
}
