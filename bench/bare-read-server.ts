/**
 * The limits a FHIR read has on this machine, for bench:fhir-read's baselines: a bare node:http server on keep-alive
 * connections that answers every GET with the same ~1 KB Patient, doing only what its mode names:
 *
 *   http     nothing else: the HTTP server's and the load generator's own cost
 *   select   one PostgreSQL statement a request (a named statement selecting the resource's JSON by id), as a read by
 *            id does
 *   write    that, and one durable row of ~1 KB a request, group committed (all the rows of the requests that arrive
 *            while a COMMIT runs go in the next one, with one multi-row INSERT): the least an audited read writes
 *
 *   node --import tsx bench/bare-read-server.ts <http|select|write> <database url> <resources>
 *
 * Stores <resources> rows, `p0` to `p<resources - 1>`, for the reads to name. Prints `PORT <n>` when it listens.
 * Its tables are its own (bench_bare_*), in the database it is given.
 */
import http from 'node:http';
import pg from 'pg';

const [mode, databaseUrl, resources] = process.argv.slice(2);
const PATIENTS = Number(resources);
if (!['http', 'select', 'write'].includes(mode ?? '') || !databaseUrl || !Number.isInteger(PATIENTS) || PATIENTS < 1) {
  throw new Error('usage: bare-read-server.ts <http|select|write> <database url> <resources>');
}
const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });

const body = JSON.stringify({
  resourceType: 'Patient',
  id: 'bare',
  meta: { versionId: '1', lastUpdated: new Date().toISOString() },
  identifier: [{ system: 'urn:oid:1.2.410.200001.1', value: 'FRM1' }],
  name: [{ family: 'Reader', given: ['P1'] }],
  gender: 'female',
  birthDate: '1980-01-01',
  address: [{ line: ['1 Bench Street'], city: 'Seoul', postalCode: '03080', country: 'KR' }],
  text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(500)}</div>` },
});

await pool.query('CREATE TABLE IF NOT EXISTS bench_bare_resource (id text PRIMARY KEY, content jsonb NOT NULL)');
await pool.query('CREATE TABLE IF NOT EXISTS bench_bare_event (id bigserial PRIMARY KEY, recorded timestamptz NOT NULL DEFAULT now(), content jsonb NOT NULL)');
await pool.query('INSERT INTO bench_bare_resource SELECT \'p\' || n, $1::jsonb FROM generate_series(0, $2::int - 1) n ON CONFLICT DO NOTHING', [body, PATIENTS]);

let waiting: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
let committing = false;

/** One transaction at a time; the requests that arrive meanwhile share the next. */
async function commitGroups(): Promise<void> {
  committing = true;
  while (waiting.length > 0) {
    const group = waiting;
    waiting = [];
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query({ name: 'bench_bare_insert', text: 'INSERT INTO bench_bare_event (content) SELECT * FROM unnest($1::jsonb[])', values: [group.map(() => body)] });
      await client.query('COMMIT');
      for (const w of group) w.resolve();
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      client.release();
    }
  }
  committing = false;
}

function durableRow(): Promise<void> {
  return new Promise((resolve, reject) => {
    waiting.push({ resolve, reject });
    if (!committing) void commitGroups();
  });
}

const server = http.createServer((request, response) => {
  void (async () => {
    let text = body;
    if (mode !== 'http') {
      const id = (request.url ?? '').slice((request.url ?? '').lastIndexOf('/') + 1);
      const result = await pool.query<{ content: string }>({ name: 'bench_bare_select', text: 'SELECT content::text AS content FROM bench_bare_resource WHERE id = $1', values: [id] });
      text = result.rows[0]?.content ?? body;
    }
    if (mode === 'write') await durableRow();
    response.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  })().catch(() => {
    response.writeHead(500).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`PORT ${(server.address() as { port: number }).port}`));
