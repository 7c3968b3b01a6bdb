/**
 * The master key (key-encryption key, KEK) behind a narrow key management interface.
 *
 * The engine never seals a record under the master key itself: records are sealed under data keys (store/keys.ts),
 * and only those small keys are wrapped here. So the master key is needed for a few bytes per patient (and per
 * inbound message), and can live in a key file under the data dir, or in a cloud KMS or HSM that never lets it out.
 *
 * Contract for an implementation (a cloud KMS or an HSM implements the same three members):
 * - `wrap(dek)` encrypts a data key of 32 bytes under the current master key and returns the wrapped bytes with the
 *   id of the master key that wrapped them; the engine stores both. It is called once per new patient key and once
 *   per inbound message (the intake's per-message key), so a remote KMS should answer in well under a millisecond
 *   or hold a local wrapping key of its own for messages.
 * - `unwrap(wrapped, keyId)` returns the data key, or throws when `keyId` is unknown or the bytes do not open under
 *   it (tampered, or wrapped by another key). Every key id that wrapped a stored key must stay unwrappable until
 *   `anchorline keys rotate-master` has re-wrapped everything under the new one: both are readable meanwhile.
 * - `currentKeyId` names the key `wrap` uses now.
 * Nothing here logs a key, wrapped or not.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { secureRandomBytes } from './random.ts';
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { AnchorlineError } from '../errors/index.ts';

export interface KeyManagementService {
  /** The id of the master key that `wrap` uses. */
  readonly currentKeyId: string;
  wrap(dek: Buffer): Promise<{ wrapped: Buffer; keyId: string }>;
  unwrap(wrapped: Buffer, keyId: string): Promise<Buffer>;
}

/** The key file's content: every master key still needed, by id, and which one wraps new keys. */
interface KeyFile {
  format: 'anchorline-master-keys/1';
  current: string;
  keys: Record<string, string>;
}

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A master key's id: derived from the key, so that two files holding the same key agree on its name. */
function keyIdOf(key: Buffer): string {
  return `file:${createHash('sha256').update('anchorline master key id\u0000').update(key).digest('hex').slice(0, 16)}`;
}

/** AES-256-GCM with the key id as associated data: a key wrapped under one master key never opens as another's. */
function wrapUnder(kek: Buffer, keyId: string, dek: Buffer): Buffer {
  const nonce = secureRandomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(Buffer.from(`anchorline/kek\u0000${keyId}`));
  return Buffer.concat([nonce, cipher.update(dek), cipher.final(), cipher.getAuthTag()]);
}

function unwrapUnder(kek: Buffer, keyId: string, wrapped: Buffer): Buffer {
  if (wrapped.length !== NONCE_BYTES + KEY_BYTES + TAG_BYTES) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', `a wrapped key of ${wrapped.length} bytes is not one this key file made`);
  const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, NONCE_BYTES));
  decipher.setAAD(Buffer.from(`anchorline/kek\u0000${keyId}`));
  decipher.setAuthTag(wrapped.subarray(NONCE_BYTES + KEY_BYTES));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(NONCE_BYTES, NONCE_BYTES + KEY_BYTES)), decipher.final()]);
  } catch {
    throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', `a wrapped key does not open under master key ${keyId}`);
  }
}

/**
 * Master keys in a file (JSON, mode 0600), created with one random key at first start. Rotation adds a key and
 * makes it current; the old one stays in the file until everything it wrapped is re-wrapped, then is retired. An
 * unknown key id makes the file be read again once, so that a process started before a rotation (a worker, a
 * second engine) opens what the rotation re-wrapped.
 */
export class FileKms implements KeyManagementService {
  /** How often, at most, `wrap` reads the file again to see a rotation made by another process, in ms. */
  static readonly reloadMs = 5_000;
  private file: KeyFile;
  private readonly filePath: string;
  private loadedAt = Date.now();

  private constructor(filePath: string, file: KeyFile) {
    this.filePath = filePath;
    this.file = file;
  }

  /** Opens the key file, creating it (and its directory) with one fresh master key when it does not exist. */
  static async open(filePath: string): Promise<FileKms> {
    let file = await readKeyFile(filePath);
    if (file === undefined) {
      const key = randomBytes(KEY_BYTES);
      const id = keyIdOf(key);
      file = { format: 'anchorline-master-keys/1', current: id, keys: { [id]: key.toString('base64') } };
      await mkdir(path.dirname(filePath), { recursive: true });
      // wx: two processes creating the file at once do not overwrite each other; the loser reads the winner's.
      try {
        const handle = await open(filePath, 'wx', 0o600);
        try {
          await handle.writeFile(JSON.stringify(file, null, 2) + '\n');
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        file = await readKeyFile(filePath);
        if (file === undefined) throw error;
      }
    }
    return new FileKms(filePath, file);
  }

  get currentKeyId(): string {
    return this.file.current;
  }

  /** Ids of every master key in the file. */
  get keyIds(): string[] {
    return Object.keys(this.file.keys);
  }

  async wrap(dek: Buffer): Promise<{ wrapped: Buffer; keyId: string }> {
    if (Date.now() - this.loadedAt > FileKms.reloadMs) await this.reload();
    const keyId = this.file.current;
    return { wrapped: wrapUnder(this.keyOf(keyId)!, keyId, dek), keyId };
  }

  async unwrap(wrapped: Buffer, keyId: string): Promise<Buffer> {
    let kek = this.keyOf(keyId);
    if (kek === undefined) {
      await this.reload();
      kek = this.keyOf(keyId);
    }
    if (kek === undefined) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', `master key ${keyId} is not in the key file`);
    return unwrapUnder(kek, keyId, wrapped);
  }

  /** Adds a new master key and makes it current; returns its id. The previous keys stay readable. */
  async rotate(): Promise<string> {
    const key = randomBytes(KEY_BYTES);
    const id = keyIdOf(key);
    await this.save({ ...this.file, current: id, keys: { ...this.file.keys, [id]: key.toString('base64') } });
    return id;
  }

  /** Removes a master key that wraps nothing any more (never the current one). */
  async retire(keyId: string): Promise<void> {
    if (keyId === this.file.current) throw new Error('the current master key cannot be retired');
    const { [keyId]: _retired, ...keys } = this.file.keys;
    await this.save({ ...this.file, keys });
  }

  private async reload(): Promise<void> {
    this.loadedAt = Date.now();
    const reread = await readKeyFile(this.filePath);
    if (reread !== undefined) this.file = reread;
  }

  private keyOf(keyId: string): Buffer | undefined {
    const encoded = this.file.keys[keyId];
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64');
  }

  /** Writes the file atomically (a temporary file of mode 0600, fsynced, renamed over it). */
  private async save(file: KeyFile): Promise<void> {
    const temporary = `${this.filePath}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(file, null, 2) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.filePath);
    await chmod(this.filePath, 0o600);
    this.file = file;
  }
}

async function readKeyFile(filePath: string): Promise<KeyFile | undefined> {
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const file = JSON.parse(text) as KeyFile;
  const current = file?.keys?.[file.current];
  if (file?.format !== 'anchorline-master-keys/1' || typeof current !== 'string' || Buffer.from(current, 'base64').length !== KEY_BYTES) {
    throw new Error(`${filePath} is not an anchorline master key file`);
  }
  return file;
}
