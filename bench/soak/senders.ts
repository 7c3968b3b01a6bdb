/**
 * MLLP senders that behave like a hospital interface engine: one message in flight per connection, the next one
 * sent when the previous one is answered, paced to a steady rate, and a message that is not answered AA/CA or AR/CR
 * (timeout, AE/CE, connection lost, engine down) sent again with the same control id until it is. Each message's
 * first send, attempts, final ACK code and ACK time are recorded for the checks.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { encodeMllpFrame, MllpFramer } from '../../adapters/mllp/framer.ts';
import { adtMessage } from '../../test/support/messages.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** MSH-3 and MSH-4 of every soak message: one sender, so control ids alone keep messages apart. */
export const SOAK_APPLICATION = 'SOAKSEND';
export const SOAK_FACILITY = 'SOAKHOSP';

export type FinalAck = 'AA' | 'CA' | 'AR' | 'CR';

export interface SentMessage {
  controlId: string;
  /** Lowercase hex SHA-256 of the bytes sent (every attempt sends the same bytes). */
  sha256: string;
  /** 'A01' (new patient) or 'A08' (update of an earlier patient of the same connection). */
  event: string;
  /** ms since the soak started. */
  firstSentAt: number;
  attempts: number;
  /** The final answer; undefined when the sender gave up. */
  ackCode?: FinalAck;
  /** ms since the soak started. */
  ackAt?: number;
  /** Answers that made the sender resend: AE/CE codes, 'timeout', 'closed'. */
  retries: string[];
}

/** MSA-1 and MSA-2 of an ACK. */
export function readAck(payload: Buffer): { code: string; controlId: string } | undefined {
  const text = payload.toString('latin1');
  const msa = text.split(/\r\n|\r|\n/).find((segment) => segment.startsWith('MSA'));
  if (!msa) return undefined;
  const fields = msa.split(msa[3] ?? '|');
  return { code: fields[1] ?? '', controlId: fields[2] ?? '' };
}

/**
 * One MLLP connection that can be lost and made again. `exchange` writes bytes and waits for the next ACK frame,
 * a timeout, or the connection's end, whichever comes first.
 */
export class MllpConnection {
  private socket: net.Socket | undefined;
  private framer = new MllpFramer({ maxFrameBytes: 1024 * 1024 });
  private acks: Buffer[] = [];
  private wake: (() => void) | undefined;
  private closed = true;

  private readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  get connected(): boolean {
    return !this.closed;
  }

  async connect(): Promise<void> {
    this.drop();
    const socket = net.connect(this.port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    this.socket = socket;
    this.closed = false;
    this.framer = new MllpFramer({ maxFrameBytes: 1024 * 1024 });
    this.acks = [];
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.framer.push(chunk)) if (event.kind === 'frame') this.acks.push(event.payload);
      this.wake?.();
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  /** Closes the connection at once (after a timeout: a late ACK must not be taken for the next message's). */
  drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.closed = true;
  }

  async exchange(bytes: Buffer, timeoutMs: number): Promise<Buffer | 'timeout' | 'closed'> {
    if (this.closed || !this.socket) return 'closed';
    this.socket.write(bytes);
    const deadline = Date.now() + timeoutMs;
    while (this.acks.length === 0) {
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.acks.shift()!;
  }
}

export interface SenderOptions {
  port: number;
  /** Connection number, part of every control id. */
  index: number;
  /** Messages per second on this connection. */
  rate: number;
  /** The soak's clock: ms since it started. */
  now: () => number;
  /** Stop starting new messages at this time (ms since start). */
  sendUntil: number;
  /** Give up on a message not answered by this time (ms since start). */
  giveUpAt: number;
  ackTimeoutMs: number;
  /** Wait before resending after AE/CE, in ms. */
  retryDelayMs: number;
}

/** One connection's paced stream of ADT messages; `messages` fills as they are sent. */
export class PacedSender {
  readonly messages: SentMessage[] = [];
  private readonly connection: MllpConnection;
  private readonly options: SenderOptions;

  constructor(options: SenderOptions) {
    this.options = options;
    this.connection = new MllpConnection(options.port);
  }

  /** The message of sequence number `seq`: a new patient, or every fifth message an update of one sent before. */
  private build(seq: number): { controlId: string; event: 'A01' | 'A08'; bytes: Buffer } {
    const { index } = this.options;
    const controlId = `S${index}-${seq}`;
    const update = seq % 5 === 4;
    const patientSeq = update ? seq - 4 : seq;
    const second = String(seq % 60).padStart(2, '0');
    const text = adtMessage({
      event: update ? 'A08' : 'A01',
      controlId,
      mrn: `SK${index}-${patientSeq}`,
      family: `Soak${index}`,
      given: update ? `Updated${seq}` : `P${patientSeq}`,
      facility: SOAK_FACILITY,
      application: SOAK_APPLICATION,
      // Updates carry a later event time than the admission they update, so they are applied over it.
      timestamp: update ? `2026112110${second}00` : `2026112109${second}00`,
    });
    return { controlId, event: update ? 'A08' : 'A01', bytes: Buffer.from(text, 'utf8') };
  }

  async run(): Promise<void> {
    const { now, sendUntil, rate } = this.options;
    const interval = 1000 / rate;
    // Connections start spread over one interval, so the aggregate stream is even.
    const start = now() + (interval * this.options.index) / 8;
    for (let seq = 0; ; seq += 1) {
      const due = start + seq * interval;
      if (due >= sendUntil) return;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      // Behind schedule (after an outage) the sender catches up as fast as the engine answers, as real ones do.
      await this.deliver(this.build(seq));
    }
  }

  private async deliver(message: { controlId: string; event: string; bytes: Buffer }): Promise<void> {
    const { now, giveUpAt, ackTimeoutMs, retryDelayMs } = this.options;
    const record: SentMessage = {
      controlId: message.controlId,
      sha256: createHash('sha256').update(message.bytes).digest('hex'),
      event: message.event,
      firstSentAt: now(),
      attempts: 0,
      retries: [],
    };
    this.messages.push(record);
    const frame = encodeMllpFrame(message.bytes);
    let reconnectDelay = 100;
    while (now() < giveUpAt) {
      if (!this.connection.connected) {
        try {
          await this.connection.connect();
          reconnectDelay = 100;
        } catch {
          // Engine down or restarting: try again, backing off to 2 s.
          await sleep(reconnectDelay);
          reconnectDelay = Math.min(2_000, reconnectDelay * 2);
          continue;
        }
      }
      record.attempts += 1;
      const answer = await this.connection.exchange(frame, ackTimeoutMs);
      if (answer === 'timeout' || answer === 'closed') {
        record.retries.push(answer);
        this.connection.drop();
        continue;
      }
      const ack = readAck(answer);
      if (!ack || ack.controlId !== message.controlId) {
        // An answer to something else: this connection is confused; start over on a new one.
        record.retries.push('mismatched-ack');
        this.connection.drop();
        continue;
      }
      if (ack.code === 'AA' || ack.code === 'CA' || ack.code === 'AR' || ack.code === 'CR') {
        record.ackCode = ack.code;
        record.ackAt = now();
        return;
      }
      record.retries.push(ack.code || 'no-code');
      await sleep(retryDelayMs);
    }
  }

  close(): void {
    this.connection.drop();
  }
}

/** What happened to one poison input. */
export interface PoisonOutcome {
  name: string;
  /** The control id its MSH names, if it has one. */
  controlId?: string;
  sha256: string;
  bytes: number;
  sentAt: number;
  /** MSA-1 of each answer, or 'timeout' / 'closed', in order. */
  answers: string[];
  /** The final answer the sender settled on. */
  final: string;
  /**
   * 'refused': the input must be answered AR/CR (or dropped, when it names no message) or dead-lettered.
   * 'kept': a well-formed frame after junk, which must be stored and mapped like any other message.
   */
  expect: 'refused' | 'kept';
  latencyMs?: number;
}

interface PoisonInput {
  name: string;
  controlId?: string;
  /** The bytes written to the socket (frames, or raw bytes with stray markers). */
  wire: Buffer;
  /** What the engine would store as the message (the payload), for the SHA-256 comparison. */
  payload: Buffer;
  expect: 'refused' | 'kept';
}

/** Inputs that must be refused or dead-lettered without disturbing anyone else. */
function poisonInputs(runId: string): PoisonInput[] {
  const base = (controlId: string, pid5: string, pid3?: string): Buffer => {
    const text = adtMessage({ controlId, mrn: `PZ-${controlId}`, facility: SOAK_FACILITY, application: 'SOAKPOISON', family: 'Poison' })
      .replace(/^PID\|1\|\|[^|]*\|\|[^|]*\|/m, `PID|1||${pid3 ?? `PZ-${controlId}^^^${SOAK_FACILITY}^MR`}||${pid5}|`);
    return Buffer.from(text, 'utf8');
  };
  const inputs: PoisonInput[] = [];
  const framed = (name: string, controlId: string, payload: Buffer): void => {
    inputs.push({ name, controlId, wire: encodeMllpFrame(payload), payload, expect: 'refused' });
  };
  framed('PID-5 of 6 MiB of ~', `${runId}-P1`, base(`${runId}-P1`, '~'.repeat(6 * 1024 * 1024)));
  framed('100k PID-3 repetitions', `${runId}-P2`, base(`${runId}-P2`, 'Poison^Many', Array.from({ length: 100_000 }, (_, i) => `R${i}^^^${SOAK_FACILITY}^MR`).join('~')));
  framed('U+0000 in PID-5', `${runId}-P3`, base(`${runId}-P3`, 'Nul\u0000Name^Zero'));
  // Stray 0x0B inside a frame: the framer sees a new start block in the middle of the message.
  {
    const payload = base(`${runId}-P4`, 'Stray^Start');
    const cut = payload.indexOf('PID');
    const wire = Buffer.concat([Buffer.from([0x0b]), payload.subarray(0, cut), Buffer.from([0x0b]), payload.subarray(cut), Buffer.from([0x1c, 0x0d])]);
    inputs.push({ name: 'stray 0x0B inside a frame', controlId: `${runId}-P4`, wire, payload, expect: 'refused' });
  }
  // Stray 0x1C without its CR inside a frame.
  {
    const payload = base(`${runId}-P5`, 'Stray^End');
    const cut = payload.indexOf('PV1');
    const wire = Buffer.concat([Buffer.from([0x0b]), payload.subarray(0, cut), Buffer.from([0x1c]), payload.subarray(cut), Buffer.from([0x1c, 0x0d])]);
    inputs.push({ name: 'stray 0x1C inside a frame', controlId: `${runId}-P5`, wire, payload, expect: 'refused' });
  }
  // Junk between frames (end markers with no frame), then a well-formed frame, which must get through intact.
  {
    const payload = base(`${runId}-P6`, 'After^Junk');
    inputs.push({ name: 'stray 0x1C 0x0D and junk, then a good frame', controlId: `${runId}-P6`, wire: Buffer.concat([Buffer.from([0x1c, 0x0d, 0x41, 0x42, 0x1c]), encodeMllpFrame(payload)]), payload, expect: 'kept' });
  }
  // A frame of binary noise with 0x0B and 0x1C sprinkled in.
  {
    const noise = Buffer.alloc(4096);
    for (let i = 0; i < noise.length; i += 1) noise[i] = (i * 131 + 7) % 251;
    inputs.push({ name: 'binary noise with markers', wire: Buffer.concat([Buffer.from([0x0b]), noise, Buffer.from([0x1c, 0x0d])]), payload: noise, expect: 'refused' });
  }
  return inputs;
}

/**
 * The poison burst, from its own connection: each input is written, and answers are read until AR/CR/AA/CA, or up
 * to three tries on AE/CE/timeout/connection loss (a sender would resend, and the engine must not choke on it).
 */
export async function sendPoisonBurst(port: number, runId: string, now: () => number, timeoutMs: number): Promise<PoisonOutcome[]> {
  const outcomes: PoisonOutcome[] = [];
  const connection = new MllpConnection(port);
  for (const input of poisonInputs(runId)) {
    const outcome: PoisonOutcome = {
      name: input.name,
      ...(input.controlId ? { controlId: input.controlId } : {}),
      sha256: createHash('sha256').update(input.payload).digest('hex'),
      bytes: input.wire.length,
      sentAt: now(),
      answers: [],
      final: 'none',
      expect: input.expect,
    };
    outcomes.push(outcome);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (!connection.connected) {
        try {
          await connection.connect();
        } catch {
          outcome.answers.push('connect-failed');
          await sleep(500);
          continue;
        }
      }
      const answer = await connection.exchange(input.wire, timeoutMs);
      if (answer === 'timeout' || answer === 'closed') {
        outcome.answers.push(answer);
        connection.drop();
        outcome.final = answer;
        continue;
      }
      // A broken frame can be answered more than once (a NAK per piece); take what comes within a moment.
      const ack = readAck(answer);
      outcome.answers.push(ack?.code ?? 'unreadable');
      outcome.final = ack?.code ?? 'unreadable';
      outcome.latencyMs = now() - outcome.sentAt;
      let extra = await connection.exchange(Buffer.alloc(0), 300);
      while (extra !== 'timeout' && extra !== 'closed') {
        const more = readAck(extra);
        outcome.answers.push(`+${more?.code ?? 'unreadable'}`);
        extra = await connection.exchange(Buffer.alloc(0), 300);
      }
      if (extra === 'closed') connection.drop();
      if (!['AE', 'CE'].includes(outcome.final)) break;
    }
  }
  connection.drop();
  return outcomes;
}
