/**
 * The anchorline command line.
 *   anchorline start  [--config file]   API, listeners and workers in one process (what `npm start` runs)
 *   anchorline worker [--config file]   workers only, against a shared DATABASE_URL (and REDIS_URL)
 *   anchorline verify <bundle.json> [--resource resource.json] [--rpc URL]   check a proof bundle (cli/verify.ts)
 *   anchorline chain deploy|allow|disallow|submitter ...   set up chain anchoring (cli/chain.ts)
 *   anchorline audit [--config file] [--json] [--max-findings N]   re-hash the ledger in the database (cli/audit.ts)
 *   anchorline terminology conceptmap load|activate, list, load ...   ConceptMaps and code systems (cli/terminology.ts)
 *   anchorline mapping test|diff|list|rollback ...   test, compare and roll back mapping configs (cli/mapping.ts)
 *   anchorline witness [keygen] --log URL --log-key VKEY ...   witness or monitor a log, cosign its checkpoints (cli/witness.ts)
 */
import { parseArgs } from 'node:util';
// Only types are imported statically: each command loads its own modules when it runs, so that `verify` loads the
// anchor verifier and nothing of the engine (fastify, pg, @medplum, the config schema), and starts in ~0.1 s.
import type { EngineRole } from './engine.ts';

const USAGE = `usage: anchorline <command> [options]

commands:
  start     run the engine: HTTP API, MLLP listener and workers (embedded PostgreSQL unless DATABASE_URL is set)
  worker    run workers only, against a shared DATABASE_URL (and REDIS_URL for BullMQ)
  verify    check a proof bundle offline: anchorline verify <bundle.json> [--resource <resource.json>] [--rpc <url>]
  chain     set up chain anchoring: anchorline chain deploy|allow|disallow|submitter (see anchorline chain --help)
  audit     re-hash the ledger in the database, report every mismatch: anchorline audit [--json] [--max-findings <n>]
  terminology  ConceptMaps and code systems: anchorline terminology conceptmap load|activate, list, load (see --help)
  mapping   mapping configs: anchorline mapping test|diff|list|rollback (see anchorline mapping --help)
  credentials  API keys and OAuth clients: anchorline credentials key|client create|list|revoke (see --help)
  user      accounts of people who sign in: anchorline user add|list|disable (see anchorline user --help)
  app       SMART apps people sign in through: anchorline app add|list (see anchorline app --help)
  witness   witness or monitor a log and cosign its checkpoints: anchorline witness keygen|--log <url> ... (see --help)
  erase     erase a patient's records by destroying their keys: anchorline erase --patient Patient/<id> [--reason <text>]
  keys      master and patient keys: anchorline keys status|rotate-master|retire-master <key id>|rotate-patient --patient Patient/<id>
  open-sealed  decrypt a sealed export (Patient/$export-sealed) with the grantee's private key: anchorline open-sealed --key <private.jwk.json> [<file.jwe>]

options:
  --config <file>   JSON config file (also ANCHORLINE_CONFIG); environment variables override it
  --help            show this help
`;

async function run(role: EngineRole, configFile: string | undefined): Promise<void> {
  const [{ ConfigError, createLogger, loadConfig }, { startEngine }] = await Promise.all([import('../config/index.ts'), import('./engine.ts')]);
  let config;
  try {
    config = loadConfig(configFile ? { file: configFile } : {});
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`anchorline: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger({ level: config.log.level });
  const engine = await startEngine(config, log, role);
  if (engine.apiKeyFile) log.info({ file: engine.apiKeyFile }, 'bootstrap admin API key is in this file');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    engine.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: (error as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  // verify has its own options and needs no config, database or network, so it is dispatched before the engine's
  // option parsing (which would reject --resource) and before any config is loaded.
  if (argv[0] === 'verify') {
    process.exitCode = await (await import('./verify.ts')).runVerify(argv.slice(1));
    return;
  }
  if (argv[0] === 'chain') {
    process.exitCode = await (await import('./chain.ts')).runChain(argv.slice(1));
    return;
  }
  // audit has options of its own too (--json, --max-findings) and reads its config itself.
  if (argv[0] === 'audit') {
    process.exitCode = await (await import('./audit.ts')).runAudit(argv.slice(1));
    return;
  }
  if (argv[0] === 'terminology') {
    process.exitCode = await (await import('./terminology.ts')).runTerminology(argv.slice(1));
    return;
  }
  if (argv[0] === 'mapping') {
    process.exitCode = await (await import('./mapping.ts')).runMapping(argv.slice(1));
    return;
  }
  if (argv[0] === 'user' || argv[0] === 'app') {
    process.exitCode = await (await import('./users.ts')).runUsers(argv[0], argv.slice(1));
    return;
  }
  if (argv[0] === 'credentials') {
    process.exitCode = await (await import('./credentials.ts')).runCredentials(argv.slice(1));
    return;
  }
  if (argv[0] === 'erase') {
    process.exitCode = await (await import('./keys.ts')).runErase(argv.slice(1));
    return;
  }
  if (argv[0] === 'open-sealed') {
    process.exitCode = await (await import('./open-sealed.ts')).runOpenSealed(argv.slice(1));
    return;
  }
  if (argv[0] === 'keys') {
    process.exitCode = await (await import('./keys.ts')).runKeys(argv.slice(1));
    return;
  }
  // witness needs no config or database either: only the log's URL, its key and the witness's own files.
  if (argv[0] === 'witness') {
    process.exitCode = await (await import('./witness.ts')).runWitness(argv.slice(1));
    return;
  }
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { config: { type: 'string' }, help: { type: 'boolean' } } });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    process.exit(command || values.help ? 0 : 2);
  }
  switch (command) {
    case 'start':
    case 'worker':
      await run(command === 'start' ? 'all' : 'worker', values.config);
      return;
    default:
      process.stderr.write(`anchorline: unknown command ${command}\n\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`anchorline: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
});
