/**
 * Admin routes of encryption at rest (store/keys.ts):
 *   POST /admin/patients/{id}/$erase   erase a patient's records by destroying their keys (store/erasure.ts)
 *   POST /admin/keys/$rotate-master    new master key, every data key re-wrapped under it (store/key-rotation.ts)
 *   GET  /admin/keys                   keys wrapped under each master key
 *   POST /admin/patients/{id}/$rotate-key  the patient's next key, their records re-sealed under it, the old key
 *                                      destroyed (store/patient-key-rotation.ts)
 * Admin scope: erasure cannot be undone.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { erasePatient, FileKms, keyringOf, keysByMasterKey, rewrapMasterKeys, rotatePatientKey, type ErasureOptions } from '../store/index.ts';
import { auditActor } from './fhir.ts';

const ERASE_SCHEMA = {
  summary: "Erase a patient's records (crypto-shredding)",
  description:
    "Destroys every key of Patient/{id}: each resource version, raw message, Consent request body and DICOM instance file sealed under them becomes unreadable, " +
    'here and in backups (the instance files are also removed). Messages still under the master key (refused, failed mapping) that carry the patient\'s ' +
    'identifiers are found by a scan and erased with them (attributedMessages in the answer). Their search-index rows, ' +
    'mapping issues and leaf preimages are removed; leaf hashes stay, so every other proof still verifies, and proofs of erased versions answer 410 ' +
    'ANCHORLINE_ERR_ERASED. Recorded as an AuditEvent (subtype erasure, purpose PATRQT). 404 when the patient has no live key.',
  tags: ['admin'],
  params: { type: 'object', properties: { id: { type: 'string', description: 'Patient id' } }, required: ['id'] },
  body: { type: ['object', 'null'], properties: { reason: { type: 'string', maxLength: 500 } }, additionalProperties: false },
};

const ROTATE_PATIENT_KEY_SCHEMA = {
  summary: "Rotate a patient's data key",
  description:
    "Makes Patient/{id}'s next key version, re-seals every resource version and raw-message key under it in short transactions while the engine runs " +
    '(reads open either key meanwhile, new records are sealed under the new one), then destroys the old key once nothing names it and no transaction ' +
    'that began before could still use it. Leaves and proofs do not change. Running it again finishes an interrupted rotation. 404 when the patient has no live key.',
  tags: ['admin'],
  params: { type: 'object', properties: { id: { type: 'string', description: 'Patient id' } }, required: ['id'] },
};

/**
 * `erasure`: what an erasure is given (store/erasure.ts): the DICOM blob store, from which it removes the patient's
 * sealed instance files, and the reader of patient identifiers in stored messages, for its scan.
 */
export function registerErasureRoutes(app: FastifyInstance, pool: pg.Pool, erasure: ErasureOptions = {}): void {
  app.post<{ Params: { id: string }; Body: { reason?: string } | null }>('/admin/patients/:id/$erase', { schema: ERASE_SCHEMA, config: { scope: 'admin' } }, async (request) => {
    const reason = request.body?.reason;
    return erasePatient(pool, { patient: `Patient/${request.params.id}`, actor: auditActor(request), ...(reason ? { reason } : {}) }, erasure);
  });

  app.post<{ Params: { id: string } }>('/admin/patients/:id/$rotate-key', { schema: ROTATE_PATIENT_KEY_SCHEMA, config: { scope: 'admin' } }, async (request) => {
    return rotatePatientKey(pool, `Patient/${request.params.id}`);
  });

  app.get('/admin/keys', { schema: { summary: 'Keys wrapped under each master key', tags: ['admin'] }, config: { scope: 'admin' } }, async () => {
    const keyring = keyringOf(pool);
    return {
      enabled: keyring?.sealing ?? false,
      currentMasterKey: keyring?.kms.currentKeyId ?? null,
      masterKeys: Object.fromEntries(await keysByMasterKey(pool)),
    };
  });

  app.post('/admin/keys/$rotate-master', { schema: { summary: 'Rotate the master key and re-wrap every data key under the new one', tags: ['admin'] }, config: { scope: 'admin' } }, async () => {
    const keyring = keyringOf(pool);
    if (keyring === undefined || !(keyring.kms instanceof FileKms)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'this engine keeps no master key file to rotate (encryption off, or another KMS rotates its own keys)');
    await keyring.kms.rotate();
    // Other processes see the new key within FileKms.reloadMs; what they wrap meanwhile is taken by the second pass.
    const first = await rewrapMasterKeys(pool, keyring);
    await new Promise((resolve) => setTimeout(resolve, FileKms.reloadMs + 500));
    const second = await rewrapMasterKeys(pool, keyring);
    return { keyId: second.keyId, patientKeys: first.patientKeys + second.patientKeys, messageKeys: first.messageKeys + second.messageKeys, remaining: second.remaining };
  });
}
