/**
 * The MLLP listener: TCP (or TLS) connections carrying MLLP-framed HL7 v2, each message answered with its ACK.
 *
 * Frames on one connection are handled strictly in order, one at a time (MLLP is request/response; a sender that
 * pipelines still gets its ACKs in order). While a connection has more than a few frames waiting, reading from it is
 * paused, so a fast or hostile sender cannot make us buffer without bound. Caps: frame size (the framer),
 * simultaneous connections, and idle time.
 *
 * Over TLS, a client certificate pinned to a source (config `sources[].mllp.clientCertificateSha256`) binds the
 * connection to that source: its messages may name that source's facilities (adapters/sources.ts). Pinned
 * certificates may be self-signed; with `requireClientCert`, a connection must present a certificate that either the
 * CA bundle verifies or a source pins.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { AnchorlineError, ERROR_CATALOGUE } from '../../errors/index.ts';
import type { Logger } from '../../config/logger.ts';
import type { Hl7Intake } from '../hl7v2/intake.ts';
import { encodeMllpFrame, MllpFramer, type FramerEvent } from './framer.ts';
import { listenOn } from '../listen.ts';
import type { IntakeMetrics } from '../../observability/types.ts';
import { originLabel, type SourcePolicy } from '../sources.ts';

export interface MllpServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  maxConnections: number;
  idleTimeoutMs: number;
  tls: { enabled: boolean; certFile?: string | undefined; keyFile?: string | undefined; caFile?: string | undefined; requireClientCert: boolean };
  intake: Hl7Intake;
  log: Logger;
  /** ACK latency (frame end to ACK written); absent: not measured. */
  metrics?: IntakeMetrics;
  /** Sources with pinned client certificates; absent: no connection is bound to a source. */
  sources?: SourcePolicy;
}

/** Frames queued on one connection before we stop reading from it. */
const MAX_QUEUED_FRAMES = 16;

export class MllpServer {
  private readonly options: MllpServerOptions;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;

  constructor(options: MllpServerOptions) {
    this.options = options;
    const onConnection = (socket: net.Socket): void => this.accept(socket);
    if (options.tls.enabled) {
      const pins = options.sources?.hasPinnedCertificates ?? false;
      this.server = tls.createServer(
        {
          cert: readFileSync(options.tls.certFile!),
          key: readFileSync(options.tls.keyFile!),
          ...(options.tls.caFile ? { ca: readFileSync(options.tls.caFile) } : {}),
          requestCert: options.tls.requireClientCert || pins,
          // With pins, a self-signed pinned certificate must get through the handshake; accept() then applies
          // requireClientCert as "CA-verified or pinned".
          rejectUnauthorized: options.tls.requireClientCert && !pins,
        },
        onConnection,
      );
      this.server.on('tlsClientError', (error) => options.log.warn({ err: error.message }, 'mllp: TLS handshake failed'));
    } else {
      this.server = net.createServer(onConnection);
    }
    this.server.on('error', (error) => options.log.error({ err: error.message }, 'mllp: server error'));
  }

  async listen(): Promise<number> {
    const port = await listenOn(this.server, this.options.host, this.options.port);
    this.options.log.info({ host: this.options.host, port, tls: this.options.tls.enabled }, 'mllp: listening');
    return port;
  }

  /** Whether the listener accepts connections (for readiness). */
  get listening(): boolean {
    return this.server.listening;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.options.maxConnections) {
      this.options.log.warn({ limit: this.options.maxConnections }, 'mllp: connection limit reached; closing new connection');
      socket.destroy();
      return;
    }
    let boundSource: string | undefined;
    if (socket instanceof tls.TLSSocket) {
      boundSource = this.options.sources?.sourceOfCertificate(socket.getPeerCertificate()?.raw);
      if (this.options.tls.requireClientCert && !socket.authorized && boundSource === undefined) {
        this.options.log.warn('mllp: client certificate neither verified by the CA bundle nor pinned to a source; closing');
        socket.destroy();
        return;
      }
    }
    const connection = new Connection(this.nextConnectionId++, socket, this.options, () => this.connections.delete(connection), boundSource);
    this.connections.add(connection);
  }

  /**
   * Stops accepting connections, lets every connection finish the message it is handling (its ACK is sent), then
   * closes them. Frames that were received but not yet started are not acknowledged; their senders resend.
   */
  async close(graceMs = 10_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.drain(graceMs)));
    await closed;
  }
}

class Connection {
  private readonly framer: MllpFramer;
  private readonly log: Logger;
  private queue: FramerEvent[] = [];
  /** When each queued frame's last byte arrived (performance.now()), for the ACK latency. */
  private readonly arrivedAt = new WeakMap<FramerEvent, number>();
  private working: Promise<void> | undefined;
  private stopping = false;
  private readonly source: string;

  private readonly socket: net.Socket;
  private readonly options: MllpServerOptions;

  private readonly boundSource: string | undefined;

  constructor(id: number, socket: net.Socket, options: MllpServerOptions, onClose: () => void, boundSource: string | undefined) {
    this.socket = socket;
    this.options = options;
    this.framer = new MllpFramer({ maxFrameBytes: options.maxFrameBytes });
    this.boundSource = boundSource;
    this.source = originLabel(`mllp:${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, boundSource);
    this.log = options.log.child({ connection: id, ...(boundSource ? { source: boundSource } : {}) });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.setTimeout(options.idleTimeoutMs, () => {
      this.log.info('mllp: idle timeout; closing');
      socket.end();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      for (const event of this.framer.end()) this.enqueue(event);
      // Finish what was received, then close our side.
      void this.idle().then(() => socket.end());
    });
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'mllp: socket error'));
    socket.on('close', () => {
      this.stopping = true;
      this.queue = [];
      onClose();
    });
  }

  private onData(chunk: Buffer): void {
    for (const event of this.framer.push(chunk)) this.enqueue(event);
  }

  private enqueue(event: FramerEvent): void {
    if (this.stopping) return;
    this.queue.push(event);
    this.arrivedAt.set(event, performance.now());
    if (this.queue.length >= MAX_QUEUED_FRAMES) this.socket.pause();
    if (!this.working) this.working = this.work().finally(() => (this.working = undefined));
  }

  private async work(): Promise<void> {
    while (this.queue.length > 0 && !this.stopping) {
      const event = this.queue.shift()!;
      if (this.queue.length < MAX_QUEUED_FRAMES / 2 && this.socket.isPaused()) this.socket.resume();
      const reply = await this.handle(event);
      if (reply && !this.socket.destroyed && this.socket.writable) {
        this.socket.write(encodeMllpFrame(reply));
        this.options.metrics?.ackSent('hl7v2-mllp', (performance.now() - (this.arrivedAt.get(event) ?? performance.now())) / 1000);
      }
    }
  }

  private async handle(event: FramerEvent): Promise<Buffer | undefined> {
    const meta = { protocol: 'hl7v2-mllp', source: this.source, boundSource: this.boundSource };
    if (event.kind === 'frame') {
      const result = await this.options.intake.receive(event.payload, meta);
      this.log.debug({ messageId: result.messageId, ackCode: result.ackCode, outcome: result.outcome }, 'mllp: message answered');
      return result.ack;
    }
    this.log.warn({ code: event.code, discardedBytes: event.discardedBytes }, `mllp: ${ERROR_CATALOGUE[event.code].title}`);
    const error = new AnchorlineError(event.code, event.detail);
    if (event.prefix) {
      // discardedBytes counts the whole broken payload; the prefix is the part kept for inspection.
      const result = await this.options.intake.receiveRefusedFrame(event.prefix, Math.max(event.discardedBytes, event.prefix.length), error, meta);
      return result.ack;
    }
    // Bytes outside any frame: nothing to keep and no header to answer to, but a NAK still tells the sender why.
    return this.options.intake.refuseUnrecorded(error, meta).ack;
  }

  private async idle(): Promise<void> {
    while (this.working) await this.working;
  }

  async drain(graceMs: number): Promise<void> {
    // Frames not yet started are dropped: they were never acknowledged, so their senders resend them.
    this.stopping = true;
    this.queue = [];
    this.socket.pause();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([this.idle(), timeout]);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }
}
