/** The upper layer guard: PDU and command limits, wherever the byte stream is cut; never throws. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortReason, abortPdu, MAX_COMMAND_BYTES, MAX_CONTROL_PDU_BYTES, PduGuard } from '../../adapters/dicom/pdu-guard.ts';

function pdu(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header[0] = type;
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function pdv(contextId: number, control: number, value: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt32BE(value.length + 2, 0);
  header[4] = contextId;
  header[5] = control;
  return Buffer.concat([header, value]);
}

function feed(guard: PduGuard, bytes: Buffer, cuts: number[] = []): ReturnType<PduGuard['push']> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let last = 0;
  for (const p of [...points, bytes.length]) {
    const violation = guard.push(bytes.subarray(last, p));
    if (violation) return violation;
    last = p;
  }
  return undefined;
}

describe('PduGuard', () => {
  it('passes well-formed traffic in any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
        const stream = Buffer.concat([
          pdu(0x01, Buffer.alloc(300)),
          pdu(0x04, Buffer.concat([pdv(1, 0x03, Buffer.alloc(100)), pdv(1, 0x00, Buffer.alloc(1000))])),
          pdu(0x04, pdv(1, 0x02, Buffer.alloc(2000))),
          pdu(0x05, Buffer.alloc(4)),
        ]);
        expect(feed(new PduGuard(4096), stream, cuts)).toBeUndefined();
      }),
    );
  });

  it('reports a P-DATA-TF PDU over the announced maximum, and other PDUs over the control limit', () => {
    expect(feed(new PduGuard(1024), pdu(0x04, pdv(1, 0x02, Buffer.alloc(2000))))).toMatchObject({ abortReason: AbortReason.InvalidPduParameterValue });
    expect(feed(new PduGuard(1024), pdu(0x01, Buffer.alloc(MAX_CONTROL_PDU_BYTES + 1)))).toMatchObject({ abortReason: AbortReason.InvalidPduParameterValue });
    // The header alone is enough: nothing of the body needs to arrive.
    const header = pdu(0x04, Buffer.alloc(0));
    header.writeUInt32BE(0xffffffff, 2);
    expect(new PduGuard(1024).push(header)).toBeDefined();
  });

  it('reports an unknown PDU type and PDV items that do not tile their PDU', () => {
    expect(feed(new PduGuard(4096), pdu(0x09, Buffer.alloc(4)))).toMatchObject({ abortReason: AbortReason.UnrecognizedPdu });
    const overlong = pdv(1, 0x02, Buffer.alloc(10));
    overlong.writeUInt32BE(500, 0);
    expect(feed(new PduGuard(4096), pdu(0x04, overlong))).toBeDefined();
    expect(feed(new PduGuard(4096), pdu(0x04, Buffer.from([0, 0, 0, 1, 1, 3])))).toBeDefined();
  });

  it('reports a command set longer than MAX_COMMAND_BYTES, and counts each message afresh', () => {
    const fragment = pdu(0x04, pdv(1, 0x01, Buffer.alloc(16 * 1024)));
    const guard = new PduGuard(64 * 1024);
    const endOfCommand = pdu(0x04, pdv(1, 0x03, Buffer.alloc(100)));
    for (let i = 0; i < 3; i += 1) {
      for (let j = 0; j < 3; j += 1) expect(guard.push(fragment)).toBeUndefined();
      expect(guard.push(endOfCommand)).toBeUndefined();
    }
    let violation;
    for (let i = 0; i <= MAX_COMMAND_BYTES / (16 * 1024) && !violation; i += 1) violation = guard.push(fragment);
    expect(violation?.detail).toMatch(/command set/);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const guard = new PduGuard(1024);
        for (const chunk of chunks) guard.push(Buffer.from(chunk));
      }),
      { numRuns: 500 },
    );
  });

  it('builds A-ABORT PDUs', () => {
    expect([...abortPdu(2, AbortReason.InvalidPduParameterValue)]).toEqual([7, 0, 0, 0, 0, 4, 0, 0, 2, 6]);
    expect([...abortPdu(0, 6)]).toEqual([7, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
  });
});
