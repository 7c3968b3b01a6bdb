/**
 * `anchorline erase --patient Patient/<id> [--reason <text>]`: erases a patient's records by destroying their keys
 * (store/erasure.ts). `anchorline keys status|rotate-master|retire-master <id>`: the master keys and what each wraps,
 * rotation with a re-wrap of every data key, and removal of a master key that wraps nothing any more.
 * `anchorline keys rotate-patient --patient Patient/<id>`: the patient's next data key, their records re-sealed under
 * it and the old key destroyed (store/patient-key-rotation.ts).
 * Both work on the engine's database as the audit does (openToolDatabase), while the engine runs.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type AnchorlineConfig } from '../config/index.ts';
import { configuredBlobStore, erasePatient, FileKms, keyringOf, keysByMasterKey, openToolDatabase, retireMasterKey, rewrapMasterKeys, rotatePatientKey } from '../store/index.ts';
import { createMessagePatientReader } from '../workers/message-patients.ts';

export const ERASE_USAGE = `usage: anchorline erase --patient Patient/<id> [--reason <text>] [--config <file>]

Destroys every key of the patient: their resource versions, raw messages, Consent request bodies and DICOM instance
files become unreadable (here and in backups; the instance files are also removed from the blob store), their
search-index rows, mapping issues and leaf preimages are removed, and an AuditEvent records the erasure. Messages still
under the master key (refused at intake, failed mapping) that carry the patient's identifiers are found by a scan and
erased with them. Every other record's proof still verifies. Cannot be undone.
`;

export const KEYS_USAGE = `usage: anchorline keys status|rotate-master|retire-master <key id>|rotate-patient --patient Patient/<id> [--config <file>]

  status          the current master key, and the patient and message keys each master key wraps
  rotate-master   add a new master key to the key file, make it current and re-wrap every data key under it
  retire-master   remove an old master key from the key file (refused while it still wraps a key)
  rotate-patient  make the patient's next data key, re-seal their records under it while the engine runs, and
                  destroy the old key once nothing names it; running it again finishes an interrupted rotation
`;

function configOf(file: string | undefined): AnchorlineConfig {
  return loadConfig(file ? { file } : {});
}

export async function runErase(argv: string[]): Promise<number> {
  let values: { patient?: string; reason?: string; config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, strict: true, options: { patient: { type: 'string' }, reason: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (error) {
    process.stderr.write(`anchorline erase: ${(error as Error).message}\n\n${ERASE_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(ERASE_USAGE);
    return 0;
  }
  if (!values.patient || !/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(values.patient)) {
    process.stderr.write(`anchorline erase: --patient Patient/<id> is required\n\n${ERASE_USAGE}`);
    return 2;
  }
  let config: AnchorlineConfig;
  try {
    config = configOf(values.config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`anchorline erase: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const database = await openToolDatabase(config, 'anchorline-erase');
  try {
    const report = await erasePatient(database.pool, {
      patient: values.patient,
      actor: { kind: 'sender', id: 'cli', name: 'anchorline erase (command line)' },
      ...(values.reason ? { reason: values.reason } : {}),
    }, {
      blobs: configuredBlobStore(config),
      // As the engine's API reads them (cli/engine.ts messagePatientReader), for the scan of messages under the master key.
      messagePatients: createMessagePatientReader({ defaultCharset: config.mllp.defaultCharset, hl7Limits: config.hl7v2, cdaLimits: config.cda, identifierSystems: () => config.mapping.identifierSystems }),
    });
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return 0;
  } catch (error) {
    process.stderr.write(`anchorline erase: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}

export async function runKeys(argv: string[]): Promise<number> {
  let values: { config?: string; patient?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { config: { type: 'string' }, patient: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (error) {
    process.stderr.write(`anchorline keys: ${(error as Error).message}\n\n${KEYS_USAGE}`);
    return 2;
  }
  const [command, keyId] = positionals;
  const patientOk = command === 'rotate-patient' ? values.patient !== undefined && /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(values.patient) : values.patient === undefined;
  if (values.help || command === undefined || !['status', 'rotate-master', 'retire-master', 'rotate-patient'].includes(command) || (command === 'retire-master') !== (keyId !== undefined) || !patientOk) {
    (values.help ? process.stdout : process.stderr).write(KEYS_USAGE);
    return values.help ? 0 : 2;
  }
  const config = configOf(values.config);
  const database = await openToolDatabase(config, 'anchorline-keys');
  try {
    const keyring = keyringOf(database.pool);
    if (keyring === undefined || !(keyring.kms instanceof FileKms)) {
      process.stderr.write('anchorline keys: no master key file (encryption was never enabled)\n');
      return 1;
    }
    if (command === 'rotate-master') {
      await keyring.kms.rotate();
      const first = await rewrapMasterKeys(database.pool, keyring);
      // Running engines read the key file again within FileKms.reloadMs; a second pass takes what they wrapped meanwhile.
      await new Promise((resolve) => setTimeout(resolve, FileKms.reloadMs + 500));
      const second = await rewrapMasterKeys(database.pool, keyring);
      process.stdout.write(JSON.stringify({ keyId: second.keyId, patientKeys: first.patientKeys + second.patientKeys, messageKeys: first.messageKeys + second.messageKeys, remaining: second.remaining }, null, 2) + '\n');
      return second.remaining === 0 ? 0 : 1;
    }
    if (command === 'rotate-patient') {
      const report = await rotatePatientKey(database.pool, values.patient!);
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      // Not every old key destroyed: a transaction did not end in time; running it again finishes.
      return report.destroyedKeys === report.replacedKeys.length ? 0 : 1;
    }
    if (command === 'retire-master') {
      await retireMasterKey(database.pool, keyring.kms, keyId!);
      process.stdout.write(`master key ${keyId} retired\n`);
      return 0;
    }
    const counts = await keysByMasterKey(database.pool);
    process.stdout.write(JSON.stringify({ enabled: config.encryption.enabled, currentMasterKey: keyring.kms.currentKeyId, masterKeys: keyring.kms.keyIds.map((id) => ({ id, ...(counts.get(id) ?? { patientKeys: 0, messageKeys: 0 }) })) }, null, 2) + '\n');
    return 0;
  } catch (error) {
    process.stderr.write(`anchorline keys: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}
