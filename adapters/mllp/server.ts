/**
 * The MLLP listener: TCP (or TLS) connections carrying MLLP-framed HL7 v2, each message answered with its ACK.
 *
 * Frames on one connection are handled strictly in order, one at a time (MLLP is request/response; a sender that
 * pipelines still gets its ACKs in order). While a connection has more than a few frames waiting, reading from it is
 * paused, so a fast or hostile sender cannot make us buffer without bound.
 *
 * Answers pair with frames: exactly one answer per frame that had a start 0x0B and an end 0x1C, and none for anything
 * else (bytes between frames, a frame abandoned by a new 0x0B, a frame cut off by the connection's end). A sender that
 * pairs replies in order therefore stays in step whatever stray framing bytes cross the line; dropped bytes are
 * counted (metrics, and a log line that says how many, never what).
 *
 * Caps against hostile or broken peers: frame size (the framer, streaming: an oversized frame is never buffered),
 * connections in all (`maxConnections`) and per peer address (`maxConnectionsPerPeer`), idle time (`idleTimeoutMs`,
 * reset by any byte) and time per frame (`frameTimeoutMs`, from the first byte of a frame, or of a run of junk, to its
 * end; a trickling sender cannot hold a connection by sending a byte now and then). A frame cut at its time limit gets
 * a NAK (ANCHORLINE_ERR_FRAME_TIMEOUT, with MSA-2 when its MSH could be read) and the connection is closed.
 *
 * Eviction: when every slot is taken, a connection from a peer holding fewer connections than the busiest peer is
 * admitted by closing one connection of the peer that holds the most (of those, the one silent longest), provided that
 * connection owes no answer. Evicting the globally longest-silent connection instead would pick the wrong victim: an
 * idle sender on a persistent connection is silent for minutes between messages, while a trickling attacker never is.
 * Taking from the peer with the most connections only ever evens out the shares, so slow connections from a few peers
 * cannot lock out a working sender, and a sender with one connection is the last to lose it.
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
import { holdsSeveralMessages } from '../../formats/hl7v2/index.ts';
import { encodeMllpFrame, MllpFramer, type FramerEvent } from './framer.ts';
import { listenOn } from '../listen.ts';
import type { IntakeMetrics, MllpMetrics } from '../../observability/types.ts';
import { originLabel, type SourcePolicy } from '../sources.ts';

export interface MllpServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  maxConnections: number;
  /** Connections one peer address may hold at once (config mllp.maxConnectionsPerPeer). */
  maxConnectionsPerPeer: number;
  idleTimeoutMs: number;
  /** Time from the first byte of a frame to its end, in ms (config mllp.frameTimeoutMs). */
  frameTimeoutMs: number;
  tls: { enabled: boolean; certFile?: string | undefined; keyFile?: string | undefined; caFile?: string | undefined; requireClientCert: boolean };
  intake: Hl7Intake;
  log: Logger;
  /** ACK latency (frame end to ACK written), dropped bytes, connections closed by a limit; absent: not measured. */
  metrics?: IntakeMetrics & Partial<MllpMetrics>;
  /** Sources with pinned client certificates; absent: no connection is bound to a source. */
  sources?: SourcePolicy;
}

/** Frames queued on one connection before we stop reading from it. */
const MAX_QUEUED_FRAMES = 16;

/** A frame given up on at mllp.frameTimeoutMs: what was kept of it, to answer it before the connection closes. */
interface FrameTimedOut {
  kind: 'timeout';
  /** The first bytes of the unfinished frame's payload; absent when what timed out was junk between frames. */
  prefix?: Buffer | undefined;
}

type ConnectionWork = FramerEvent | FrameTimedOut;

/**
 * Whether a framer event is answered: a frame, or a broken frame its sender finished (start and end). Anything else
 * gets no answer, since the sender would take it for the answer to its next message.
 */
export function owesAnswer(event: FramerEvent): boolean {
  return event.kind === 'frame' || event.answerable;
}

/** The peer's address as one key for IPv4 and IPv4-mapped IPv6 ('::ffff:10.0.0.1' and '10.0.0.1' are one peer). */
function peerAddress(socket: net.Socket): string {
  const address = socket.remoteAddress ?? '?';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export class MllpServer {
  private readonly options: MllpServerOptions;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly byPeer = new Map<string, Set<Connection>>();
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
    let boundSource: string | undefined;
    if (socket instanceof tls.TLSSocket) {
      boundSource = this.options.sources?.sourceOfCertificate(socket.getPeerCertificate()?.raw);
      if (this.options.tls.requireClientCert && !socket.authorized && boundSource === undefined) {
        this.options.log.warn('mllp: client certificate neither verified by the CA bundle nor pinned to a source; closing');
        socket.destroy();
        return;
      }
    }
    const peer = peerAddress(socket);
    const held = this.byPeer.get(peer)?.size ?? 0;
    if (held >= this.options.maxConnectionsPerPeer) {
      // The peer address is logged: it is the sending system's, not patient data, and says whom to call.
      this.options.log.warn({ peer, limit: this.options.maxConnectionsPerPeer }, 'mllp: per-peer connection limit reached; closing new connection');
      this.options.metrics?.mllpConnectionClosed?.('peer-limit');
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.options.maxConnections) {
      const victim = this.evictionCandidate(held);
      if (victim === undefined) {
        this.options.log.warn({ limit: this.options.maxConnections }, 'mllp: connection limit reached; closing new connection');
        this.options.metrics?.mllpConnectionClosed?.('connection-limit');
        socket.destroy();
        return;
      }
      victim.evict(peer);
    }
    const connection = new Connection(this.nextConnectionId++, socket, peer, this.options, () => this.forget(connection), boundSource);
    this.connections.add(connection);
    let peerConnections = this.byPeer.get(peer);
    if (peerConnections === undefined) this.byPeer.set(peer, (peerConnections = new Set()));
    peerConnections.add(connection);
  }

  private forget(connection: Connection): void {
    this.connections.delete(connection);
    const peerConnections = this.byPeer.get(connection.peer);
    if (peerConnections?.delete(connection) && peerConnections.size === 0) this.byPeer.delete(connection.peer);
  }

  /**
   * The connection to close so that a peer holding `held` connections can open one more: of the peers holding at
   * least two more than that, the one holding the most, and of its connections that owe no answer the one silent
   * longest. Undefined when no eviction would make the shares more even.
   */
  private evictionCandidate(held: number): Connection | undefined {
    let victim: Connection | undefined;
    let victimPeerSize = 0;
    for (const peerConnections of this.byPeer.values()) {
      // Taking from a peer that holds held + 1 or fewer would only swap the shares, not even them out.
      if (peerConnections.size <= held + 1 || peerConnections.size < victimPeerSize) continue;
      for (const connection of peerConnections) {
        // A connection that owes an answer is not taken: its sender would lose an ACK for a stored message.
        if (connection.owesAnswers) continue;
        if (victim === undefined || peerConnections.size > victimPeerSize || connection.lastInputAt < victim.lastInputAt) {
          victim = connection;
          victimPeerSize = peerConnections.size;
        }
      }
    }
    return victim;
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
  readonly peer: string;
  /** When the last bytes arrived from the peer (performance.now()); the connection's silence is measured from it. */
  lastInputAt = performance.now();
  private readonly framer: MllpFramer;
  private readonly log: Logger;
  private queue: ConnectionWork[] = [];
  /** When each queued frame's last byte arrived (performance.now()), for the ACK latency. */
  private readonly arrivedAt = new WeakMap<ConnectionWork, number>();
  private working: Promise<void> | undefined;
  private stopping = false;
  /** Set when the connection is to close once its queue is answered (a frame ran out of time). */
  private closingAfterQueue = false;
  /** The server has forgotten this connection (closed or evicted). */
  private gone = false;
  private frameTimer: NodeJS.Timeout | undefined;
  /** Bytes dropped without an answer, and in how many runs: logged once, at the first run and when the connection closes. */
  private droppedBytes = 0;
  private droppedRuns = 0;
  private readonly source: string;

  private readonly socket: net.Socket;
  private readonly options: MllpServerOptions;
  private readonly onClose: () => void;

  private readonly boundSource: string | undefined;

  constructor(id: number, socket: net.Socket, peer: string, options: MllpServerOptions, onClose: () => void, boundSource: string | undefined) {
    this.socket = socket;
    this.peer = peer;
    this.options = options;
    this.onClose = onClose;
    this.framer = new MllpFramer({ maxFrameBytes: options.maxFrameBytes });
    this.boundSource = boundSource;
    this.source = originLabel(`mllp:${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, boundSource);
    this.log = options.log.child({ connection: id, ...(boundSource ? { source: boundSource } : {}) });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.setTimeout(options.idleTimeoutMs, () => {
      this.log.info('mllp: idle timeout; closing');
      this.options.metrics?.mllpConnectionClosed?.('idle-timeout');
      socket.end();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.clearFrameTimer();
      if (!this.closingAfterQueue) for (const event of this.framer.end()) this.enqueue(event);
      // Finish what was received, then close our side.
      void this.idle().then(() => socket.end());
    });
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'mllp: socket error'));
    socket.on('close', () => this.closed());
  }

  /** Whether a received frame is still waiting for, or being given, its answer. */
  get owesAnswers(): boolean {
    return this.working !== undefined || this.queue.length > 0;
  }

  /** Closes the connection to make room for another peer's (see MllpServer's eviction). */
  evict(forPeer: string): void {
    this.log.warn({ peer: this.peer, admitted: forPeer }, 'mllp: connection limit reached; closing the longest-silent connection of the peer holding the most');
    this.options.metrics?.mllpConnectionClosed?.('evicted');
    this.socket.destroy();
    // The slot is free now, not when the socket's close event comes round.
    this.closed();
  }

  private closed(): void {
    if (this.gone) return;
    this.gone = true;
    this.stopping = true;
    this.queue = [];
    this.clearFrameTimer();
    if (this.droppedRuns > 1) this.log.warn({ droppedBytes: this.droppedBytes, runs: this.droppedRuns }, 'mllp: bytes outside frames or in unfinished frames were dropped on this connection');
    this.onClose();
  }

  private onData(chunk: Buffer): void {
    if (this.closingAfterQueue || this.stopping) return;
    this.lastInputAt = performance.now();
    const events = this.framer.push(chunk);
    for (const event of events) this.enqueue(event);
    // The frame timer runs from the first byte of the frame (or junk run) that is open now. Anything that began in an
    // earlier chunk and is still open produced no event, so an event here means what is open began in this chunk.
    if (!this.framer.inputOpen) this.clearFrameTimer();
    else if (events.length > 0 || this.frameTimer === undefined) this.startFrameTimer();
  }

  private startFrameTimer(): void {
    this.clearFrameTimer();
    this.frameTimer = setTimeout(() => this.onFrameTimeout(), this.options.frameTimeoutMs);
    this.frameTimer.unref();
  }

  private clearFrameTimer(): void {
    if (this.frameTimer !== undefined) clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
  }

  private onFrameTimeout(): void {
    this.frameTimer = undefined;
    if (this.stopping || this.socket.destroyed) return;
    if (this.socket.isPaused() && this.queue.length > 0) {
      // We stopped reading (frames waiting for their turn), so the rest of this frame may be waiting on our side.
      this.startFrameTimer();
      return;
    }
    const abandoned = this.framer.abandon();
    this.log.warn({ code: 'ANCHORLINE_ERR_FRAME_TIMEOUT', discardedBytes: abandoned?.discardedBytes ?? 0, limitMs: this.options.frameTimeoutMs }, 'mllp: frame not finished within the frame time limit; closing');
    this.options.metrics?.mllpConnectionClosed?.('frame-timeout');
    if (abandoned) this.options.metrics?.mllpBytesDropped?.(abandoned.prefix ? 'unfinished-frame' : 'outside-frame', abandoned.discardedBytes);
    this.socket.pause();
    const work: FrameTimedOut = { kind: 'timeout', prefix: abandoned?.prefix };
    this.queue.push(work);
    this.closingAfterQueue = true;
    if (!this.working) this.working = this.work().finally(() => (this.working = undefined));
  }

  private enqueue(event: FramerEvent): void {
    if (this.stopping) return;
    if (!owesAnswer(event)) {
      // Handled here rather than queued: no answer is owed, so nothing waits for its turn.
      this.dropped(event as Extract<FramerEvent, { kind: 'error' }>);
      return;
    }
    this.queue.push(event);
    this.arrivedAt.set(event, performance.now());
    if (this.queue.length >= MAX_QUEUED_FRAMES) this.socket.pause();
    if (!this.working) this.working = this.work().finally(() => (this.working = undefined));
  }

  private dropped(event: Extract<FramerEvent, { kind: 'error' }>): void {
    const reason = event.prefix === undefined ? 'outside-frame' : 'unfinished-frame';
    this.options.metrics?.mllpBytesDropped?.(reason, event.discardedBytes);
    this.droppedBytes += event.discardedBytes;
    this.droppedRuns++;
    // Only the first run is logged as it happens, so a peer sending junk cannot flood the log; closed() sums up.
    if (this.droppedRuns === 1) this.log.warn({ code: event.code, reason, discardedBytes: event.discardedBytes }, 'mllp: bytes dropped without an answer (no frame start and end around them)');
  }

  private async work(): Promise<void> {
    while (this.queue.length > 0 && !this.stopping) {
      const event = this.queue.shift()!;
      if (!this.closingAfterQueue && this.queue.length < MAX_QUEUED_FRAMES / 2 && this.socket.isPaused()) this.socket.resume();
      const reply = await this.handle(event);
      if (reply && !this.socket.destroyed && this.socket.writable) {
        this.socket.write(encodeMllpFrame(reply));
        if (event.kind !== 'timeout') this.options.metrics?.ackSent('hl7v2-mllp', (performance.now() - (this.arrivedAt.get(event) ?? performance.now())) / 1000);
      }
      if (event.kind === 'timeout') {
        this.socket.end();
        setTimeout(() => this.socket.destroy(), 1_000).unref();
      }
    }
  }

  private async handle(event: ConnectionWork): Promise<Buffer | undefined> {
    const meta = { protocol: 'hl7v2-mllp', source: this.source, boundSource: this.boundSource };
    if (event.kind === 'frame') {
      // A frame may carry a batch (FHS/BHS ... BTS/FTS), or messages one after another; its answer is the batch of
      // the messages' ACKs, in one frame.
      if (holdsSeveralMessages(event.payload)) {
        const batch = await this.options.intake.receiveBatch(event.payload, meta);
        this.log.debug({ messages: batch.results.length, messageIds: batch.results.map((result) => result.messageId) }, 'mllp: batch answered');
        return batch.ack;
      }
      const result = await this.options.intake.receive(event.payload, meta);
      this.log.debug({ messageId: result.messageId, ackCode: result.ackCode, outcome: result.outcome }, 'mllp: message answered');
      return result.ack;
    }
    if (event.kind === 'timeout') {
      // Junk that ran out of time was no frame: nothing to answer. A frame gets its NAK, read from its first bytes;
      // the connection closes after it, so the NAK cannot be taken for the answer to a later message.
      if (event.prefix === undefined) return undefined;
      const error = new AnchorlineError('ANCHORLINE_ERR_FRAME_TIMEOUT', `the frame did not end within mllp.frameTimeoutMs (${this.options.frameTimeoutMs} ms)`);
      return this.options.intake.refuseUnfinishedFrame(event.prefix, error, meta).ack;
    }
    this.log.warn({ code: event.code, discardedBytes: event.discardedBytes }, `mllp: ${ERROR_CATALOGUE[event.code].title}`);
    const error = new AnchorlineError(event.code, event.detail);
    // An answered broken frame always has its prefix (possibly empty); discardedBytes counts the whole payload.
    const prefix = event.prefix ?? Buffer.alloc(0);
    const result = await this.options.intake.receiveRefusedFrame(prefix, Math.max(event.discardedBytes, prefix.length), error, meta);
    return result.ack;
  }

  private async idle(): Promise<void> {
    while (this.working) await this.working;
  }

  async drain(graceMs: number): Promise<void> {
    // Frames not yet started are dropped: they were never acknowledged, so their senders resend them.
    this.stopping = true;
    this.queue = [];
    this.clearFrameTimer();
    this.socket.pause();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([this.idle(), timeout]);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }
}
