/**
 * The mapping tester (admin scope), behind the console's Mapping tester view:
 *   GET  /admin/mappings/{name}/yaml   the active version of a config as YAML: its file's text when that file still
 *                                      holds exactly this version (comments kept), else the stored content rendered
 *   POST /admin/mappings/test          dry run of one message with the active configs, and with an edited config
 *                                      beside them: the FHIR output of each and what changes between them
 *   POST /admin/mappings/deploy        validate an edited config and make it the active version everywhere
 *
 * The dry run is the CLI's (workers/mapping-dry-run.ts): what `anchorline mapping test|diff` prints, per message.
 *
 * Deploying works like a rollback: the version is stored in mapping_config and activated in mapping_deployment
 * (reason 'console'), and every engine and worker process maps with it within its registry's poll interval
 * (mapping.pollIntervalMs, default 2 s). It is not a file version, so a process that loads the unchanged file again
 * (a restart, a touched file, a hot reload) keeps the edit active; when the file itself changes, the file's new
 * version is deployed and replaces the edit, as it would replace a rollback. Put the edit into the file to keep it.
 * Only configs some process loads can be deployed (names already deployed: a file of the config directory, or
 * 'default'): registries map only the names their files give, so a config for a new sender starts as a file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
// The swagger plugin's FastifySchema fields (summary, tags, hide) that the generated API docs read.
import type {} from '@fastify/swagger';
import type pg from 'pg';
import { stringify } from 'yaml';
import { readMshHeader, resolveCharset, encodeHl7Text } from '../formats/hl7v2/index.ts';
import {
  DEFAULT_MAPPING_CONFIG,
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  combineMappingConfigs,
  formatProblem,
  parseMappingConfig,
  storedVersion,
  type MappingBase,
  type MappingConfigContent,
  type MappingConfigProblem,
  type MappingConfigVersion,
  type ParsedMappingConfig,
} from '../config/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { auditTrail, inbox, mappingDeployments, withTransaction, type Queryable } from '../store/index.ts';
import { auditActor } from './fhir.ts';
import { diffMessage, listMappingConfigs, mapMessage, splitMessages, type CorpusMessage, type MappingConfigListing } from '../workers/index.ts';

export interface MappingTesterOptions {
  pool: pg.Pool;
  /** The engine's `mapping` settings: the base every config is resolved on. */
  base: MappingBase;
  /** Charset of HL7 v2 messages without MSH-18 (mllp.defaultCharset). */
  defaultCharset: string;
}

/** The largest message text the tester accepts, in characters: a test message, not a batch file. */
const MAX_MESSAGE_CHARS = 1024 * 1024;
/** Configs are a few lines; the same limit as a config file. */
const MAX_YAML_CHARS = 1024 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const TAGS = ['admin: mappings'];

const configBody = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME.source }, yaml: { type: 'string', maxLength: MAX_YAML_CHARS } },
  required: ['name', 'yaml'],
} as const;

export function registerMappingTesterRoutes(app: FastifyInstance, options: MappingTesterOptions): void {
  const { pool, base, defaultCharset } = options;

  app.get<{ Params: { name: string } }>(
    '/admin/mappings/:name/yaml',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'The active version of a mapping config as YAML, to edit in the tester',
        tags: TAGS,
        params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      },
    },
    async (request) => {
      const { name } = request.params;
      const listing = (await listMappingConfigs(pool)).find((l) => l.name === name);
      if (!listing?.active) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no mapping config named '${name}' is deployed`);
      const fromFile = fileText(listing, base);
      return {
        name,
        sha256: listing.active.sha256,
        reason: listing.active.reason,
        deployedAt: listing.active.deployedAt,
        fromFile: fromFile !== undefined,
        yaml: fromFile ?? renderYaml(name, listing.active.content as MappingConfigContent),
      };
    },
  );

  app.post<{ Body: { message?: unknown; messageId?: unknown; config?: { name: string; yaml: string } } }>(
    '/admin/mappings/test',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Dry-run one HL7 v2 message with the active mapping configs, and with an edited config',
        description:
          'Give the message as text (`message`) or name a stored one (`messageId`: its exact bytes). Answers the config the message selects, ' +
          'its FHIR output under the active configs (`deployed`) and, with `config`, under the edited config (`candidate`), the differences ' +
          '(`diff`), and `problems` when the edited config is invalid. Nothing is stored.',
        tags: TAGS,
        body: {
          type: 'object',
          properties: {
            message: { type: 'string', minLength: 1, maxLength: MAX_MESSAGE_CHARS },
            messageId: { type: 'integer', minimum: 1 },
            config: configBody,
          },
        },
      },
    },
    async (request) => {
      const body = request.body ?? {};
      if ((body.message === undefined) === (body.messageId === undefined)) {
        throw invalid('send {"message": "MSH|..."} or {"messageId": <inbox id>}, and optionally "config": {"name", "yaml"}', 'message');
      }
      let message: CorpusMessage;
      if (body.messageId !== undefined) {
        // Mapping a stored message shows its patient data: audited like the raw message view.
        message = await withTransaction(pool, async (client) => {
          const stored = await storedMessage(client, body.messageId as number);
          await auditTrail.recordRead(client, { interaction: 'read', actor: auditActor(request), returned: [], patients: [], description: `raw inbound message ${body.messageId as number} (mapping dry run)` });
          return stored;
        });
      } else {
        message = textMessage(body.message as string, defaultCharset);
      }
      const active = await activeVersions(pool);
      const fallback = builtInDefault(base);
      const deployed = mapMessage(message, new MappingConfigSet(active, fallback), defaultCharset);
      const selected = deployed.config !== undefined && deployed.sha256 !== undefined ? { name: deployed.config, sha256: deployed.sha256 } : null;
      if (body.config === undefined) return { selected, deployed };

      const parsed = parseCandidate(body.config.name, body.config.yaml, base);
      if ('problems' in parsed) return { selected, deployed, problems: parsed.problems };
      const clash = clashes(parsed, active);
      if (clash.length > 0) return { selected, deployed, problems: clash };
      const candidateSet = new MappingConfigSet([parsed.version, ...active.filter((v) => v.name !== parsed.version.name)], fallback);
      const candidate = mapMessage(message, candidateSet, defaultCharset);
      return {
        selected,
        deployed,
        candidateConfig: { name: parsed.version.name, sha256: parsed.version.sha256 },
        candidate,
        diff: diffMessage(deployed, candidate),
      };
    },
  );

  app.post<{ Body: { name: string; yaml: string } }>(
    '/admin/mappings/deploy',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Validate an edited mapping config and make it the active version in every engine and worker',
        description:
          'Stores the version and activates it (reason console). Processes switch within mapping.pollIntervalMs. Loading the unchanged file again ' +
          'keeps it active; a changed file replaces it. Only configs already deployed (a file some process loads, or default) can be deployed.',
        tags: TAGS,
        body: configBody,
      },
    },
    async (request) => {
      const { name, yaml } = request.body;
      const parsed = parseCandidate(name, yaml, base);
      if ('problems' in parsed) throw problemsError(parsed.problems);
      const outcome = await mappingDeployments.deployEditedVersion(pool, name, parsed.version.content, 'console', async (client) => {
        const history = await mappingDeployments.deploymentHistory(client, name);
        if (history.length === 0) {
          throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no mapping config named '${name}' is deployed; a config for a new sender starts as a file in the config directory`);
        }
        const clash = clashes(parsed, await activeVersions(client));
        if (clash.length > 0) throw problemsError(clash);
      });
      return { name, previousSha256: outcome.previousSha256 ?? null, sha256: outcome.sha256, changed: outcome.changed };
    },
  );
}

/** The active version of every deployed config, as the registries map with them (unusable stored ones left out). */
async function activeVersions(db: pg.Pool | pg.PoolClient): Promise<MappingConfigVersion[]> {
  const versions: MappingConfigVersion[] = [];
  for (const listing of await listMappingConfigs(db)) {
    if (!listing.active || listing.active.content === null) continue;
    try {
      versions.push(storedVersion(listing.name, listing.active.sha256, listing.active.content));
    } catch (error) {
      if (!(error instanceof MappingConfigError)) throw error;
    }
  }
  return versions;
}

function parseCandidate(name: string, yaml: string, base: MappingBase): ParsedMappingConfig | { problems: MappingConfigProblem[] } {
  try {
    return parseMappingConfig(yaml, `${name}.yaml`, base);
  } catch (error) {
    if (error instanceof MappingConfigError) return { problems: error.problems };
    throw error;
  }
}

/** Problems of using the edited config together with the other active ones (overlapping matches). */
function clashes(candidate: ParsedMappingConfig, active: MappingConfigVersion[]): MappingConfigProblem[] {
  const others: ParsedMappingConfig[] = active
    .filter((version) => version.name !== candidate.version.name)
    .map((version) => ({ file: version.name, version, positions: { name: { line: 1, column: 1 }, match: { line: 1, column: 1 } } }));
  return combineMappingConfigs([...others, candidate]).problems;
}

function problemsError(problems: MappingConfigProblem[]): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `the mapping config is invalid: ${problems.map(formatProblem).join('; ')}`, { location: problems[0]?.key ?? 'yaml' });
}

async function storedMessage(pool: Queryable, id: number): Promise<CorpusMessage> {
  const message = await inbox.getMessage(pool, id);
  if (!message) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `message ${id} does not exist`, { location: 'messageId' });
  if (message.protocol !== 'hl7v2-mllp' && message.protocol !== 'hl7v2-http') {
    throw invalid(`message ${id} is ${message.protocol}; the tester maps HL7 v2 messages`, 'messageId');
  }
  return { file: `message ${id}`, index: 1, bytes: message.raw };
}

/**
 * Pasted text as the bytes a sender would have sent: encoded in the charset its MSH-18 names (so decoding by MSH-18
 * gives the text back), with line ends as segment ends. A text without a readable MSH is passed on as UTF-8, and
 * mapping reports the coded error.
 */
function textMessage(text: string, defaultCharset: string): CorpusMessage {
  let bytes: Buffer = Buffer.from(text, 'utf8');
  try {
    const firstLine = text.replace(/^\s+/, '').split(/\r\n|\r|\n/)[0] ?? '';
    const charset = resolveCharset(readMshHeader(firstLine).characterSet, defaultCharset);
    bytes = encodeHl7Text(text, charset);
  } catch {
    // Left as UTF-8.
  }
  const messages = splitMessages(bytes);
  return { file: 'pasted message', index: 1, bytes: messages[0] ?? bytes };
}

/**
 * The text of the config file a version was deployed from, when that file still holds exactly this version: the
 * way its author wrote it, comments included.
 */
function fileText(listing: MappingConfigListing, base: MappingBase): string | undefined {
  const file = [...listing.history].reverse().find((row) => row.reason === 'file' && row.sha256 === listing.active?.sha256)?.source;
  if (!file || !path.isAbsolute(file) || !['.yaml', '.yml'].includes(path.extname(file).toLowerCase()) || !existsSync(file)) return undefined;
  try {
    const text = readFileSync(file, 'utf8');
    return parseMappingConfig(text, file, base).version.sha256 === listing.active?.sha256 ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Stored (resolved) content as a config file: keys in the order the format documents them. */
function renderYaml(name: string, content: MappingConfigContent): string {
  const ordered: Record<string, unknown> = { name: content.name ?? name };
  if (content.description !== undefined) ordered.description = content.description;
  if (content.match !== undefined && name !== DEFAULT_MAPPING_CONFIG) ordered.match = content.match;
  ordered.timeZone = content.timeZone;
  ordered.identifierSystems = content.identifierSystems;
  ordered.localCodeSystemBase = content.localCodeSystemBase;
  if (content.codeSystems !== undefined && Object.keys(content.codeSystems).length > 0) ordered.codeSystems = content.codeSystems;
  if (content.fields !== undefined) ordered.fields = content.fields;
  if (content.valueMaps !== undefined) ordered.valueMaps = content.valueMaps;
  // Every other key the content holds (defaultAuthority, fatalIssues, zSegments, ...), so that a config edited from
  // this text and deployed again loses nothing it had.
  for (const [key, value] of Object.entries(content)) if (!(key in ordered) && key !== 'match' && value !== undefined) ordered[key] = value;
  const header = `# ${name}: the active version (${content.name === undefined ? 'the engine settings' : 'stored content'}), resolved on the engine's mapping settings\n`;
  return header + stringify(ordered, { lineWidth: 0 });
}

function invalid(detail: string, location?: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', detail, location ? { location } : undefined);
}
