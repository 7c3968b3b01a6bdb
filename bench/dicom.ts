/**
 * DICOM intake benchmark on this machine: DCMTK's storescu over loopback (C-STORE instances/s) and STOW-RS uploads
 * (MB/s), against an intake node.
 *
 *   npx tsx bench/dicom.ts [--instances 1000] [--instance-kb 512] [--associations 1,4] [--stow-mb 256] [--stow-parts 32] [--stow-concurrency 1,4]
 *
 * Topology: `anchorline start` with workers.enabled=false (HTTP + MLLP + DIMSE + embedded PostgreSQL) as a child
 * process; storescu processes (Debian dcmtk) and this process's fetch as the senders.
 *
 * storescu runs twice per association count: as shipped, and with TCP_NODELAY=1 in its environment (DCMTK's switch
 * for disabling Nagle's algorithm on its side). Debian's DCMTK 3.6.7 leaves Nagle on: it then holds the last,
 * partial segment of each C-STORE request until our delayed ACK (about 40 ms), whatever our side sets, so a sender's
 * own TCP_NODELAY decides its rate far more than anything in the listener. Every instance is a distinct CT
 * image of --instance-kb KiB of pixel data (512 KiB: 512x512, 16 bits), made with dump2dcm and copied with new SOP
 * Instance UIDs. An instance counts once the engine has answered it: its blob is written and fsynced and its inbox row
 * and ingest job are committed. Mapping into FHIR is not part of these figures.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { startChildEngine } from '../test/support/child-engine.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '1000' },
    'instance-kb': { type: 'string', default: '512' },
    associations: { type: 'string', default: '1,4' },
    'stow-mb': { type: 'string', default: '256' },
    'stow-parts': { type: 'string', default: '32' },
    'stow-concurrency': { type: 'string', default: '1,4' },
  },
});
const INSTANCES = Number(values.instances);
const INSTANCE_KB = Number(values['instance-kb']);
const ASSOCIATIONS = values.associations.split(',').map(Number);
const STOW_MB = Number(values['stow-mb']);
const STOW_PARTS = Number(values['stow-parts']);
const STOW_CONCURRENCY = values['stow-concurrency'].split(',').map(Number);

/** SOP Instance UIDs of one fixed length, so a copy of the template differs in those bytes only. */
const TEMPLATE_UID = '2.25.900001.1.10000000';
let nextInstance = 10_000_001;
const nextUid = (): string => `2.25.900001.1.${nextInstance++}`;

async function makeTemplate(dir: string): Promise<Buffer> {
  const pixelBytes = INSTANCE_KB * 1024;
  const columns = 512;
  const rows = Math.max(1, Math.floor(pixelBytes / 2 / columns));
  const pixels = Buffer.alloc(rows * columns * 2);
  for (let i = 0; i < pixels.length; i += 2) pixels.writeUInt16LE((i * 7919) & 0x0fff, i);
  await writeFile(path.join(dir, 'pixels.raw'), pixels);
  const dump = [
    '(0008,0005) CS [ISO_IR 100]',
    '(0008,0016) UI =CTImageStorage',
    `(0008,0018) UI [${TEMPLATE_UID}]`,
    '(0008,0020) DA [20260101]',
    '(0008,0030) TM [120000]',
    '(0008,0060) CS [CT]',
    '(0010,0010) PN [Bench^Patient]',
    '(0010,0020) LO [BENCH0001]',
    '(0010,0021) LO [BENCHGEN]',
    '(0020,000d) UI [2.25.900001]',
    '(0020,000e) UI [2.25.900001.1]',
    '(0020,0013) IS [1]',
    '(0028,0002) US 1',
    '(0028,0004) CS [MONOCHROME2]',
    `(0028,0010) US ${rows}`,
    `(0028,0011) US ${columns}`,
    '(0028,0100) US 16',
    '(0028,0101) US 12',
    '(0028,0102) US 11',
    '(0028,0103) US 0',
    '(7fe0,0010) OW =pixels.raw',
  ].join('\n');
  await writeFile(path.join(dir, 'template.dump'), `${dump}\n`);
  await run('dump2dcm', ['-q', '+te', 'template.dump', 'template.dcm'], { cwd: dir });
  return readFile(path.join(dir, 'template.dcm'));
}

function copyWithUid(template: Buffer, uid: string): Buffer {
  const copy = Buffer.from(template);
  const from = Buffer.from(TEMPLATE_UID, 'latin1');
  const to = Buffer.from(uid, 'latin1');
  for (let at = copy.indexOf(from); at >= 0; at = copy.indexOf(from, at + from.length)) to.copy(copy, at);
  return copy;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-dicom-'));
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-dicom-files-'));
  const engine = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE__WORKERS__ENABLED: 'false', ANCHORLINE__ANCHOR__ENABLED: 'false' });
  const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
  const db = new pg.Client({ connectionString: `postgres://anchorline:${encodeURIComponent(password)}@127.0.0.1:${engine.postgresPort}/anchorline` });
  await db.connect();
  const apiKey = (await readFile(path.join(dataDir, 'api-key'), 'utf8')).trim();
  const stored = async (): Promise<number> => (await db.query(`SELECT count(*)::int AS n FROM inbox_message WHERE protocol = 'dicom' AND disposition = 'accepted'`)).rows[0].n as number;

  try {
    const template = await makeTemplate(workDir);
    const mb = (bytes: number): number => bytes / (1024 * 1024);
    console.log(`anchorline DICOM benchmark: ${os.cpus().length} cores; instances of ${(template.length / 1024).toFixed(0)} KiB (CT, Explicit VR Little Endian), intake only (mapping not running)`);

    // ---- C-STORE from storescu -----------------------------------------------------------------------------------
    const files: string[] = [];
    for (let i = 0; i < INSTANCES + 20; i += 1) {
      const file = path.join(workDir, `i${i}.dcm`);
      await writeFile(file, copyWithUid(template, nextUid()));
      files.push(file);
    }
    const storescu = (batch: string[], noDelay: boolean): Promise<unknown> =>
      run('storescu', ['-aec', 'ANCHORLINE', '127.0.0.1', String(engine.dicomPort), ...batch], { maxBuffer: 1 << 24, env: { ...process.env, ...(noDelay ? { TCP_NODELAY: '1' } : {}) } });
    await storescu(files.splice(0, 20), true); // warm-up: JIT, pool connections, blob directories
    let cursor = 0;
    const runs = ASSOCIATIONS.flatMap((associations) => [false, true].map((noDelay) => ({ associations, noDelay })));
    for (const { associations, noDelay } of runs) {
      const share = Math.floor(INSTANCES / runs.length / associations);
      const batches = Array.from({ length: associations }, () => files.slice(cursor, (cursor += share)));
      const before = await stored();
      const start = performance.now();
      await Promise.all(batches.map((batch) => storescu(batch, noDelay)));
      const seconds = (performance.now() - start) / 1000;
      const count = (await stored()) - before;
      const sent = share * associations;
      if (count !== sent) console.log(`(stored ${count} of ${sent})`);
      console.log(
        `c-store: ${(count / seconds).toFixed(0)} instances/s, ${(mb(count * template.length) / seconds).toFixed(1)} MB/s over ${associations} association(s), storescu ${noDelay ? 'with TCP_NODELAY=1' : 'as shipped (Nagle on)'} (${count} in ${seconds.toFixed(2)} s, storescu start and association included)`,
      );
    }

    // ---- STOW-RS -------------------------------------------------------------------------------------------------
    const boundary = 'bench-boundary-0f3a9c';
    const request = (): Buffer => {
      const pieces: Buffer[] = [];
      for (let p = 0; p < STOW_PARTS; p += 1) pieces.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), copyWithUid(template, nextUid()), Buffer.from('\r\n'));
      pieces.push(Buffer.from(`--${boundary}--\r\n`));
      return Buffer.concat(pieces);
    };
    const post = async (body: Buffer): Promise<void> => {
      const response = await fetch(`http://127.0.0.1:${engine.httpPort}/dicomweb/studies`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
        body,
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`STOW-RS answered ${response.status}`);
    };
    await post(request()); // warm-up
    const requestBytes = request().length;
    const requests = Math.max(1, Math.round((STOW_MB * 1024 * 1024) / requestBytes));
    for (const concurrency of STOW_CONCURRENCY) {
      const bodies = Array.from({ length: requests }, request);
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < bodies.length) await post(bodies[next++]!);
        }),
      );
      const seconds = (performance.now() - start) / 1000;
      const bytes = bodies.reduce((sum, b) => sum + b.length, 0);
      console.log(`stow-rs: ${(mb(bytes) / seconds).toFixed(1)} MB/s, ${((requests * STOW_PARTS) / seconds).toFixed(0)} instances/s with ${concurrency} request(s) at a time (${requests} requests of ${STOW_PARTS} instances, ${mb(bytes).toFixed(0)} MB in ${seconds.toFixed(2)} s)`);
    }
  } finally {
    await db.end();
    engine.process.kill('SIGTERM');
    await engine.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  }
}

await main();
