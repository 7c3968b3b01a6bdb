/**
 * Property: whatever bytes arrive in an MLLP frame, the sender gets exactly one ACK frame (AA/CA or a coded NAK),
 * and the engine keeps serving: a well-formed message afterwards is accepted. Hostile header fields (NUL, stray
 * delimiters, invalid UTF-8) are among the generated cases, since they reach the database as text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { withEngineAndClient } from '../support/engine.ts';

let client: MllpTestClient;
withEngineAndClient({}, (_engine, mllp) => {
  client = mllp;
});

/** Payload bytes that do not contain the MLLP framing bytes (the framer's own properties cover those). */
const payloadByte = fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0b && b !== 0x1c);

const hostileField = fc.oneof(
  fc.string(),
  fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  fc.constantFrom('\u0000', 'A\u0000B', '^~\\&', '|', '\\F\\', '""', '홍길동', '\uFFFD'),
  // Long and incompressible: past what an index entry can hold.
  fc.uint8Array({ minLength: 4000, maxLength: 4000 }).map((bytes) => Buffer.from(bytes).toString('base64')),
);

const hl7Like = fc
  .record({ app: hostileField, facility: hostileField, type: fc.constantFrom('ADT^A01', 'ADT^A08', 'ORU^R01', '', 'ADT'), control: hostileField, charset: fc.constantFrom('', 'UNICODE UTF-8', '8859/1', 'KS X 1001', 'UTF-16', 'nonsense') })
  .map(({ app, facility, type, control, charset }) => {
    const text = `MSH|^~\\&|${app}|${facility}|R|F|20260101||${type}|${control}|P|2.5.1|||||${charset}\rPID|1||123^^^X^MR||Doe^J\r`;
    return Buffer.from(text.replaceAll('\u000b', ' ').replaceAll('\u001c', ' '), charset === '8859/1' ? 'latin1' : 'utf8');
  });

const anyPayload = fc.oneof(fc.array(payloadByte, { maxLength: 300 }).map((b) => Buffer.from(b)), hl7Like);

describe('intake robustness', () => {
  it('answers every frame with one ACK and keeps serving', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(anyPayload, async (payload) => {
        client.send(payload);
        const ack = (await client.nextAck(10_000)).toString('latin1');
        // With a healthy store every answer is final: accepted, or rejected with a code. An AE/CE here would tell the
        // sender to resend input that can never succeed.
        expect(['AA', 'AR', 'CA', 'CR']).toContain(hl7Field(ack, 'MSA', 1));
        if (hl7Field(ack, 'MSA', 1) === 'AR' || hl7Field(ack, 'MSA', 1) === 'CR') expect(ack).toMatch(/ANCHORLINE_ERR_[A-Z_]+/);
        // A well-formed message right after is still accepted: nothing was poisoned.
        const ok = await client.request(adtMessage({ controlId: `ROBUST-${n++}`, mrn: `RB${n}` }));
        expect(hl7Field(ok, 'MSA', 1)).toBe('AA');
      }),
      { numRuns: 150 },
    );
  });
});
