/**
 * Which database errors fail a message once (the same values fail the same way every time) and which are retried:
 * a unique violation between two workers creating the same new resource is a race, not a refusal.
 */
import { describe, expect, it } from 'vitest';
import { refusedForItsValues } from '../../store/index.ts';

describe('refusedForItsValues', () => {
  it('reads data exceptions, not-null and check violations and program limits as refusals of the values', () => {
    for (const code of ['22P05', '22003', '22021', '23502', '23514', '54000']) expect(refusedForItsValues({ code })).toBe(code);
    // Wrapped, as a driver or our own errors may wrap it.
    expect(refusedForItsValues(new Error('outer', { cause: { code: '22P05' } }))).toBe('22P05');
  });

  it('leaves races between writers and failures of the connection to the retry', () => {
    for (const code of ['23505', '23503', '23P01', '40001', '40P01', '57P01', '08006', '53300', '57014']) expect(refusedForItsValues({ code })).toBeUndefined();
    expect(refusedForItsValues(new Error('no code'))).toBeUndefined();
    expect(refusedForItsValues(undefined)).toBeUndefined();
  });
});

describe('a pool whose server connection dies under a checked-out client', () => {
  it('does not end the process: the next statement on that client fails, a new client works', async () => {
    const { createPool } = await import('../../store/index.ts');
    const { testDatabaseUrl } = await import('../support/db.ts');
    const pool = createPool({ connectionString: testDatabaseUrl(), schema: 'public', max: 2 });
    const other = createPool({ connectionString: testDatabaseUrl(), schema: 'public', max: 1 });
    try {
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // As when PostgreSQL restarts while a transaction holds the client between two statements.
      await other.query('SELECT pg_terminate_backend($1)', [pid]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await expect(client.query('SELECT 1')).rejects.toThrow();
      client.release(true);
      expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    } finally {
      await pool.end();
      await other.end();
    }
  });
});
