/** AuditEvent ids (store/audit-trail.ts auditEventId): RFC 9562 UUIDv7, ordered by time, unique. */
import { describe, expect, it } from 'vitest';
import { auditEventId } from '../../store/audit-trail.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('auditEventId', () => {
  it('is a UUIDv7 whose first 48 bits are the time in milliseconds', () => {
    const at = Date.UTC(2026, 11, 7, 6, 0, 0, 123);
    const id = auditEventId(at);
    expect(id).toMatch(UUID_V7);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sorts by time, so later events land at the right edge of the indexes they key', () => {
    const ids = Array.from({ length: 50 }, (_, i) => auditEventId(1_800_000_000_000 + i * 7));
    expect([...ids].sort()).toEqual(ids);
  });

  it('never repeats, within one millisecond either, across more than one block of random bytes', () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => auditEventId(1_800_000_000_000)));
    expect(ids.size).toBe(20_000);
    for (const id of [...ids].slice(0, 100)) expect(id).toMatch(UUID_V7);
  });
});
