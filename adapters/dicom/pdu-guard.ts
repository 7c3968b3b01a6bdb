/**
 * Limits on the DICOM upper layer byte stream (PS3.8 section 9), checked before the DIMSE library sees the bytes.
 *
 * The library accumulates whatever PDU length a peer announces and every command fragment a peer sends, so a
 * hostile or broken peer could make it buffer without bound. The guard follows PDU and PDV framing as bytes arrive
 * (headers only; it never holds a payload) and reports the first violation:
 * - a PDU type outside 1-7;
 * - a P-DATA-TF PDU longer than the maximum length we announced, or another PDU longer than MAX_CONTROL_PDU_BYTES;
 * - PDV items that do not tile their P-DATA-TF PDU exactly, or are shorter than their own header;
 * - a command set (the command fragments of one message) longer than MAX_COMMAND_BYTES.
 * The caller answers a violation with A-ABORT and closes the connection. `push` never throws.
 */

/** A-ASSOCIATE-RQ/AC/RJ, A-RELEASE, A-ABORT: generous for an association request proposing hundreds of contexts. */
export const MAX_CONTROL_PDU_BYTES = 128 * 1024;
/** A command set is a few hundred bytes; this leaves room for every optional command element. */
export const MAX_COMMAND_BYTES = 64 * 1024;

/** PS3.8 table 9-26: A-ABORT reasons when the source is the service provider. */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  InvalidPduParameterValue: 6,
} as const;

export interface PduViolation {
  detail: string;
  abortReason: number;
}

const P_DATA_TF = 0x04;

export class PduGuard {
  private maxDataPduBytes: number;
  private violation: PduViolation | undefined;
  /** Bytes of the 6-byte PDU header read so far. */
  private readonly header = Buffer.alloc(6);
  private headerFill = 0;
  private pduType = 0;
  /** Bytes of the current PDU body still to come. */
  private pduRemaining = 0;
  /** Inside a P-DATA-TF body: the 6-byte PDV item header being read, then the item's value. */
  private readonly pdvHeader = Buffer.alloc(6);
  private pdvHeaderFill = 0;
  private pdvRemaining = 0;
  private pdvIsCommand = false;
  private commandBytes = 0;
  private commandComplete = false;

  constructor(maxDataPduBytes: number) {
    this.maxDataPduBytes = maxDataPduBytes;
  }

  /** The maximum P-DATA-TF length we announced (known once the association is accepted). */
  setMaxDataPduBytes(bytes: number): void {
    this.maxDataPduBytes = bytes;
  }

  push(chunk: Buffer): PduViolation | undefined {
    if (this.violation) return undefined;
    let offset = 0;
    while (offset < chunk.length && !this.violation) {
      if (this.pduRemaining === 0) {
        const take = Math.min(6 - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + take);
        this.headerFill += take;
        offset += take;
        if (this.headerFill === 6) this.startPdu();
        continue;
      }
      const take = Math.min(this.pduRemaining, chunk.length - offset);
      if (this.pduType === P_DATA_TF) this.readPdvs(chunk, offset, take);
      offset += take;
      this.pduRemaining -= take;
      if (this.pduRemaining === 0) this.endPdu();
    }
    return this.violation;
  }

  private fail(detail: string, abortReason: number): void {
    this.violation ??= { detail, abortReason };
  }

  private startPdu(): void {
    this.headerFill = 0;
    this.pduType = this.header[0]!;
    const length = this.header.readUInt32BE(2);
    if (this.pduType < 1 || this.pduType > 7) return this.fail(`unknown PDU type ${this.pduType}`, AbortReason.UnrecognizedPdu);
    const limit = this.pduType === P_DATA_TF ? this.maxDataPduBytes : MAX_CONTROL_PDU_BYTES;
    if (length > limit) return this.fail(`PDU type ${this.pduType} of ${length} bytes exceeds the ${limit}-byte maximum`, AbortReason.InvalidPduParameterValue);
    this.pduRemaining = length;
    this.pdvHeaderFill = 0;
    this.pdvRemaining = 0;
    if (length === 0) this.endPdu();
  }

  private endPdu(): void {
    if (this.pduType === P_DATA_TF && (this.pdvHeaderFill !== 0 || this.pdvRemaining !== 0)) {
      this.fail('a PDV item runs past the end of its P-DATA-TF PDU', AbortReason.InvalidPduParameterValue);
    }
  }

  private readPdvs(chunk: Buffer, start: number, length: number): void {
    let offset = start;
    const end = start + length;
    while (offset < end && !this.violation) {
      if (this.pdvRemaining === 0) {
        const take = Math.min(6 - this.pdvHeaderFill, end - offset);
        chunk.copy(this.pdvHeader, this.pdvHeaderFill, offset, offset + take);
        this.pdvHeaderFill += take;
        offset += take;
        // What is left of the PDU after this item's header.
        if (this.pdvHeaderFill === 6) this.startPdv(this.pduRemaining - (offset - start));
        continue;
      }
      const take = Math.min(this.pdvRemaining, end - offset);
      if (this.pdvIsCommand) {
        this.commandBytes += take;
        if (this.commandBytes > MAX_COMMAND_BYTES) return this.fail(`a command set longer than ${MAX_COMMAND_BYTES} bytes`, AbortReason.InvalidPduParameterValue);
      }
      offset += take;
      this.pdvRemaining -= take;
    }
  }

  private startPdv(pduBytesLeft: number): void {
    this.pdvHeaderFill = 0;
    const itemLength = this.pdvHeader.readUInt32BE(0);
    const control = this.pdvHeader[5]!;
    // The item length counts the context id and control header bytes: at least 2, and within the PDU.
    if (itemLength < 2 || itemLength - 2 > pduBytesLeft) {
      return this.fail(`a PDV item of length ${itemLength} does not fit its P-DATA-TF PDU`, AbortReason.InvalidPduParameterValue);
    }
    this.pdvIsCommand = (control & 0x01) === 0x01;
    this.pdvRemaining = itemLength - 2;
    if (this.pdvIsCommand) {
      // A command fragment after a complete command set starts the next message's command set.
      if (this.commandComplete) this.commandBytes = 0;
      this.commandComplete = (control & 0x02) === 0x02;
    }
  }
}

/**
 * An A-ABORT PDU (PS3.8 9.3.8). Source 0: the service user (we end the association); 2: the service provider (a
 * protocol violation), with a reason from AbortReason (reasons are only meaningful with source 2).
 */
export function abortPdu(source: 0 | 2, reason: number): Buffer {
  return Buffer.from([0x07, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, source, source === 2 ? reason : 0]);
}
