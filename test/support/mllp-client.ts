/** A minimal MLLP sender for tests: writes frames (or raw bytes) and collects the ACK frames that come back. */
import net from 'node:net';
import tls from 'node:tls';
import { encodeMllpFrame, MllpFramer } from '../../adapters/mllp/framer.ts';

export class MllpTestClient {
  readonly socket: net.Socket;
  private readonly framer = new MllpFramer({ maxFrameBytes: 16 * 1024 * 1024 });
  private readonly received: Buffer[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.framer.push(chunk)) if (event.kind === 'frame') this.received.push(event.payload);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress`: the address to send from (127.0.0.2, 127.0.0.3, ... stand for other peers on Linux loopback). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<MllpTestClient> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new MllpTestClient(socket);
  }

  /** Connects over TLS (mllp.tls.enabled), presenting `options.cert`/`options.key` as the client certificate if given. */
  static async connectTls(port: number, options: tls.ConnectionOptions): Promise<MllpTestClient> {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new MllpTestClient(socket);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(message: string | Buffer): void {
    this.socket.write(encodeMllpFrame(typeof message === 'string' ? Buffer.from(message, 'utf8') : message));
  }

  /** ACK frames received and not yet taken by nextAck(). */
  get pendingAcks(): number {
    return this.received.length;
  }

  /** Waits for the next ACK frame. */
  async nextAck(timeoutMs = 15_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (this.closed) throw new Error('connection closed before an ACK arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for an ACK');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.shift()!;
  }

  async request(message: string | Buffer): Promise<string> {
    this.send(message);
    return (await this.nextAck()).toString('latin1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 2_000).unref();
    });
  }
}

/** Field `n` (HL7 numbering) of the first segment named `name` in an ER7 text. */
export function hl7Field(text: string, segment: string, n: number): string {
  const line = text.split(/\r\n|\r|\n/).find((s) => s.startsWith(segment + '|'));
  if (!line) return '';
  const fields = line.split('|');
  // MSH-1 is the separator itself, so MSH fields sit one place to the left of their number.
  return (segment === 'MSH' ? fields[n - 1] : fields[n]) ?? '';
}
