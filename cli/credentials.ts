/**
 * `anchorline credentials`: API keys and OAuth clients from the command line, against the engine's database, for
 * setting up a hospital's credentials without the HTTP API (the same rules: scopes by the grammar of api/access.ts,
 * sources named in the config). A key or client secret is printed once, on stdout; only hashes are stored.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseScopeList } from '../api/access.ts';
import { boundSourceName, publicKeySet } from '../api/credentials.ts';
import { parsePositiveId } from '../api/params.ts';
import { ConfigError, loadConfig, type AnchorlineConfig } from '../config/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
import { apiKeys, oauthClients, openToolDatabase } from '../store/index.ts';

export const CREDENTIALS_USAGE = `usage: anchorline credentials <command> [options]

commands:
  key create --name <name> --scope <scope>... [--source <source>]     make an API key (printed once)
  key list                                                            active keys (never the keys themselves)
  key revoke <id>                                                     revoke a key
  client create --name <name> --scope <scope>... [--source <source>] [--jwks <file>]
                                                                      register an OAuth client (client-credentials grant);
                                                                      without --jwks it gets a secret (printed once)
  client list                                                         active clients
  client revoke <client_id>                                           revoke a client (its tokens stop working)

Scopes: system/<Type>.<cruds> (SMART v2, e.g. system/Patient.rs, system/*.rs), ingest, audit, terminology, admin.
Sources: the names in the config's \`sources\`; a bound credential may ingest only that source's facilities.

options:
  --config <file>   JSON config file (also ANCHORLINE_CONFIG): which database
  --help            show this help
`;

export interface CredentialsOutput {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: CredentialsOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

class UsageError extends Error {}

interface Options {
  config?: string;
  name?: string;
  scope?: string[];
  source?: string;
  jwks?: string;
  help?: boolean;
}

/** Runs `credentials` with the arguments after the command name; returns the exit code (0 done, 1 not found, 2 usage). */
export async function runCredentials(argv: string[], output: CredentialsOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: Options;
  let positionals: string[];
  let config: AnchorlineConfig;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        source: { type: 'string' },
        jwks: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
    if (values.help || positionals.length === 0) {
      output.out(CREDENTIALS_USAGE);
      return values.help ? 0 : 2;
    }
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), env });
  } catch (error) {
    if (error instanceof ConfigError) {
      output.err(`anchorline credentials: ${error.message}\n`);
      return 2;
    }
    output.err(`anchorline credentials: ${(error as Error).message}\n\n${CREDENTIALS_USAGE}`);
    return 2;
  }

  const [kind, action, target] = positionals;
  try {
    const database = await openToolDatabase(config, 'anchorline-credentials');
    try {
      const pool = database.pool;
      switch (`${kind} ${action}`) {
        case 'key create': {
          const created = await apiKeys.createApiKey(pool, required(values.name, '--name'), scopes(values), undefined, source(values, config));
          output.err(`API key ${created.info.id} "${created.info.name}": ${created.info.scopes.join(' ')}${created.info.source ? `, bound to ${created.info.source}` : ''}\n`);
          output.out(`${created.key}\n`);
          return 0;
        }
        case 'key list':
          for (const key of await apiKeys.listApiKeys(pool)) {
            output.out(`${key.id}\t${key.name}\t${key.scopes.join(' ')}\t${key.source ?? '-'}\t${key.createdAt.toISOString()}\n`);
          }
          return 0;
        case 'key revoke': {
          const id = parsePositiveId(required(target, 'the key id'));
          if (id === undefined) throw new UsageError('the key id is a number in decimal digits (see credentials key list)');
          if (!(await apiKeys.revokeApiKey(pool, id))) {
            output.err(`anchorline credentials: no active key ${id}\n`);
            return 1;
          }
          output.err(`revoked key ${id}\n`);
          return 0;
        }
        case 'client create': {
          const jwks = values.jwks ? publicKeySet(JSON.parse(await readFile(values.jwks, 'utf8'))) : null;
          const created = await oauthClients.createClient(pool, { name: required(values.name, '--name'), scopes: scopes(values), source: source(values, config), jwks });
          output.err(`OAuth client "${created.client.name}": ${created.client.scopes.join(' ')}${created.client.source ? `, bound to ${created.client.source}` : ''}\n`);
          output.out(`client_id=${created.client.clientId}\n${created.secret ? `client_secret=${created.secret}\n` : ''}`);
          return 0;
        }
        case 'client list':
          for (const client of await oauthClients.listClients(pool)) {
            const auth = [client.hasSecret ? 'secret' : '', client.jwks ? 'private_key_jwt' : ''].filter(Boolean).join(',');
            output.out(`${client.clientId}\t${client.name}\t${client.scopes.join(' ')}\t${client.source ?? '-'}\t${auth}\t${client.createdAt.toISOString()}\n`);
          }
          return 0;
        case 'client revoke':
          if (!(await oauthClients.revokeClient(pool, required(target, 'the client_id')))) {
            output.err(`anchorline credentials: no active client ${target}\n`);
            return 1;
          }
          output.err(`revoked client ${target}\n`);
          return 0;
        default:
          throw new UsageError(`unknown command ${positionals.join(' ')}`);
      }
    } finally {
      await database.close();
    }
  } catch (error) {
    if (error instanceof UsageError || isAnchorlineError(error)) {
      const message = isAnchorlineError(error) ? (error.detail ?? error.code) : error.message;
      output.err(`anchorline credentials: ${message}\n\n${CREDENTIALS_USAGE}`);
      return 2;
    }
    output.err(`anchorline credentials: ${(error as Error).message}\n`);
    return 2;
  }
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`${what} is required`);
  return value;
}

function scopes(values: Options): string[] {
  if (!values.scope || values.scope.length === 0) throw new UsageError('--scope is required (repeat it for several)');
  return parseScopeList(values.scope);
}

function source(values: Options, config: AnchorlineConfig): string | null {
  return boundSourceName(values.source, config.sources.map((s) => s.name));
}
