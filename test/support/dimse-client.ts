/**
 * A minimal DICOM upper layer client built from raw PDUs, for what DCMTK's tools will not do: hold an association
 * open, send a data set that is not DICOM, send PDUs larger than announced, or send without waiting for responses.
 * Command sets are Implicit VR Little Endian (PS3.7 6.3.1). Real peers (echoscu, storescu) cover the ordinary paths.
 */
import net from 'node:net';

export const VERIFICATION = '1.2.840.10008.1.1';
export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export interface ProposedContext {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export type Pdu = { type: number; body: Buffer };

function item(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header[0] = type;
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value]);
}

function pdu(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header[0] = type;
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function aeTitle(title: string): Buffer {
  return Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'latin1');
}

export function associateRequest(options: { called: string; calling: string; contexts: ProposedContext[]; maxPduLength?: number }): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(1, 0);
  aeTitle(options.called).copy(fixed, 4);
  aeTitle(options.calling).copy(fixed, 20);
  const contexts = options.contexts.map((c) =>
    item(0x20, Buffer.concat([Buffer.from([c.id, 0, 0, 0]), item(0x30, Buffer.from(c.abstractSyntax, 'latin1')), ...c.transferSyntaxes.map((ts) => item(0x40, Buffer.from(ts, 'latin1')))])),
  );
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(options.maxPduLength ?? 16_384);
  const userInfo = item(0x50, Buffer.concat([item(0x51, maxLength), item(0x52, Buffer.from('1.2.3.4.5.6', 'latin1'))]));
  return pdu(0x01, Buffer.concat([fixed, item(0x10, Buffer.from('1.2.840.10008.3.1.1.1', 'latin1')), ...contexts, userInfo]));
}

/** One element of an Implicit VR Little Endian command set. */
function element(tag: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(0x0000, 0);
  header.writeUInt16LE(tag, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

function uint16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
}

function uid(value: string): Buffer {
  const b = Buffer.from(value, 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([0])]);
}

export function commandSet(fields: { sopClassUid: string; commandField: number; messageId: number; hasDataset: boolean; sopInstanceUid?: string }): Buffer {
  const elements = Buffer.concat([
    element(0x0002, uid(fields.sopClassUid)),
    element(0x0100, uint16(fields.commandField)),
    element(0x0110, uint16(fields.messageId)),
    ...(fields.commandField === 0x0001 ? [element(0x0700, uint16(0))] : []),
    element(0x0800, uint16(fields.hasDataset ? 0x0000 : 0x0101)),
    ...(fields.sopInstanceUid ? [element(0x1000, uid(fields.sopInstanceUid))] : []),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(elements.length);
  return Buffer.concat([element(0x0000, length), elements]);
}

/** P-DATA-TF PDUs carrying one message (command, then data set), fragmented to maxPdvBytes. */
export function message(contextId: number, command: Buffer, dataset?: Buffer, maxPdvBytes = 16_000): Buffer {
  const pdus: Buffer[] = [];
  const fragments = (bytes: Buffer, isCommand: boolean): void => {
    for (let offset = 0; offset < bytes.length || offset === 0; offset += maxPdvBytes) {
      const value = bytes.subarray(offset, offset + maxPdvBytes);
      const last = offset + maxPdvBytes >= bytes.length;
      const header = Buffer.alloc(6);
      header.writeUInt32BE(value.length + 2, 0);
      header[4] = contextId;
      header[5] = (isCommand ? 1 : 0) | (last ? 2 : 0);
      pdus.push(pdu(0x04, Buffer.concat([header, value])));
      if (bytes.length === 0) break;
    }
  };
  fragments(command, true);
  if (dataset) fragments(dataset, false);
  return Buffer.concat(pdus);
}

/** The Status (0000,0900) of a response command set, or undefined. */
export function responseStatus(command: Buffer): number | undefined {
  let offset = 0;
  while (offset + 8 <= command.length) {
    const group = command.readUInt16LE(offset);
    const tag = command.readUInt16LE(offset + 2);
    const length = command.readUInt32LE(offset + 4);
    if (group === 0x0000 && tag === 0x0900 && length === 2) return command.readUInt16LE(offset + 8);
    offset += 8 + length;
  }
  return undefined;
}

export class RawDimseClient {
  readonly socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private readonly pdus: Pdu[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 6) {
        const length = this.buffer.readUInt32BE(2);
        if (this.buffer.length < 6 + length) break;
        this.pdus.push({ type: this.buffer[0]!, body: this.buffer.subarray(6, 6 + length) });
        this.buffer = this.buffer.subarray(6 + length);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawDimseClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawDimseClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The next PDU from the server; undefined when the connection closed first. */
  async next(timeoutMs = 10_000): Promise<Pdu | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.pdus.length === 0) {
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error('no PDU in time');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.pdus.shift();
  }

  /** The next complete command set received (P-DATA-TF command fragments put together). */
  async nextCommand(timeoutMs = 10_000): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    for (;;) {
      const received = await this.next(timeoutMs);
      if (!received) return undefined;
      if (received.type !== 0x04) throw new Error(`expected P-DATA-TF, got PDU type ${received.type}`);
      let offset = 0;
      let last = false;
      while (offset < received.body.length) {
        const length = received.body.readUInt32BE(offset);
        const control = received.body[offset + 5]!;
        if (control & 1) parts.push(received.body.subarray(offset + 6, offset + 4 + length));
        last = (control & 3) === 3;
        offset += 4 + length;
      }
      if (last) return Buffer.concat(parts);
    }
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async associate(options: { called: string; calling: string; contexts: ProposedContext[]; maxPduLength?: number }): Promise<Pdu | undefined> {
    this.send(associateRequest(options));
    return this.next();
  }

  async release(): Promise<void> {
    this.send(pdu(0x05, Buffer.alloc(4)));
    await this.next().catch(() => undefined);
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
}

/** The result/source/reason of an A-ASSOCIATE-RJ body. */
export function rejection(body: Buffer): { result: number; source: number; reason: number } {
  return { result: body[1]!, source: body[2]!, reason: body[3]! };
}

/** The presentation context results of an A-ASSOCIATE-AC: context id -> result (0 acceptance). */
export function contextResults(body: Buffer): Map<number, number> {
  const results = new Map<number, number>();
  let offset = 68;
  while (offset + 4 <= body.length) {
    const type = body[offset]!;
    const length = body.readUInt16BE(offset + 2);
    if (type === 0x21) results.set(body[offset + 4]!, body[offset + 6]!);
    offset += 4 + length;
  }
  return results;
}

/** The Maximum Length Received the server announced in its A-ASSOCIATE-AC. */
export function announcedMaxPdu(body: Buffer): number | undefined {
  let offset = 68;
  while (offset + 4 <= body.length) {
    const type = body[offset]!;
    const length = body.readUInt16BE(offset + 2);
    if (type === 0x50) {
      let sub = offset + 4;
      while (sub + 4 <= offset + 4 + length) {
        const subType = body[sub]!;
        const subLength = body.readUInt16BE(sub + 2);
        if (subType === 0x51) return body.readUInt32BE(sub + 4);
        sub += 4 + subLength;
      }
    }
    offset += 4 + length;
  }
  return undefined;
}
