/**
 * The log, served read-only so that anyone can mirror and check it (docs/proofs.md, "Serving the log"):
 *
 *   GET  /log                         JSON: origin, log key, latest size and checkpoint number, tile layout
 *   GET  /log/checkpoint              the latest signed checkpoint (C2SP tlog-checkpoint note, with cosignatures)
 *   GET  /log/checkpoint/{size}       the checkpoint of exactly that tree size
 *   GET  /log/consistency?old=&new=   anchorline-consistency/1: both checkpoints and the RFC 9162 proof between them
 *   GET  /log/tile/{L}/{N}[.p/{W}]    C2SP tlog-tiles hash tiles, up to the latest checkpoint (public: hashes only)
 *   GET  /log/tile/entries/{N}[.p/{W}] entry bundles: the leaf bytes (preimages), audit scope (see below)
 *   POST /log/cosignature             a witness's cosignature on a checkpoint (verified against anchor.witnesses)
 *
 * Checkpoints, proofs and hash tiles carry no patient data and need no credential. Entry bundles do need the audit
 * scope: a preimage names a resource id, and ids derived from business keys (a Patient's from its MRN) could be
 * confirmed by anyone who guesses the key.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { bytesToBase64, CONSISTENCY_FORMAT, witnessVerifiers, type ConsistencyDocument } from '../anchor/index.ts';
import { consistencyProof, cosignatureTimestamp, formatSignatureLine, openNote, parseNote, TILE_HEIGHT, TILE_WIDTH, type NoteVerifier } from '../anchor/log/index.ts';
import { hex8 } from '../anchor/log/note.ts';
import type { Access } from './access.ts';
import { AnchorlineError } from '../errors/index.ts';
import { log as logStore } from '../store/index.ts';
import { parsePositiveId } from './params.ts';

export interface LogRouteOptions {
  /** cosignature/v1 verifier keys of the witnesses whose cosignatures are accepted. */
  witnesses: readonly string[];
  /** Authenticates a request's Authorization header (the server's authenticator), for the routes that need it. */
  authenticate: (authorization: string | undefined) => Promise<Access>;
}

const TEXT = 'text/plain; charset=utf-8';
/** Longest cosignature submission read: a checkpoint note with its signature lines. */
const MAX_COSIGNATURE_BODY = 16_384;

export function registerLogRoutes(app: FastifyInstance, pool: pg.Pool, options: LogRouteOptions): void {
  const witnesses = configuredWitnesses(options.witnesses);

  app.get('/log', { config: { public: true }, schema: { summary: 'The log: origin, log key, latest size', tags: ['log'] } }, async () => {
    const latest = await logStore.latestCheckpoint(pool);
    return {
      origin: latest ? latest.text.slice(0, latest.text.indexOf('\n')) : null,
      logKey: latest?.logKey ?? null,
      treeSize: latest?.treeSize ?? 0,
      checkpoint: latest?.number ?? null,
      tiles: { width: TILE_WIDTH, height: TILE_HEIGHT, prefix: '/log/' },
      witnesses: options.witnesses,
    };
  });

  app.get('/log/checkpoint', { config: { public: true }, schema: { summary: 'Latest signed checkpoint', tags: ['log'] } }, async (_request, reply) => {
    const latest = await logStore.latestCheckpoint(pool);
    if (!latest) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'the log has no checkpoint yet');
    return reply.header('content-type', TEXT).header('cache-control', 'no-store').send(await logStore.checkpointNote(pool, latest));
  });

  app.get<{ Params: { size: string } }>('/log/checkpoint/:size', { config: { public: true }, schema: { summary: 'Signed checkpoint of one tree size', tags: ['log'] } }, async (request, reply) => {
    const size = parsePositiveId(request.params.size);
    if (size === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the tree size must be a positive integer in decimal digits');
    const checkpoint = await logStore.checkpointOfSize(pool, size);
    if (!checkpoint) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no checkpoint of tree size ${size}`);
    return reply.header('content-type', TEXT).send(await logStore.checkpointNote(pool, checkpoint));
  });

  app.get<{ Querystring: { old?: string; new?: string } }>('/log/consistency', { config: { public: true }, schema: { summary: 'Consistency proof between two checkpoints', tags: ['log'] } }, async (request): Promise<ConsistencyDocument> => {
    const oldSize = parsePositiveId(request.query.old ?? '');
    const newSize = request.query.new === undefined ? (await logStore.latestCheckpoint(pool))?.treeSize : parsePositiveId(request.query.new);
    if (oldSize === undefined || newSize === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'old (and new, default the latest) must be checkpoint tree sizes');
    if (oldSize > newSize) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'old must not be larger than new: a log only grows');
    const [older, newer] = await Promise.all([logStore.checkpointOfSize(pool, oldSize), logStore.checkpointOfSize(pool, newSize)]);
    if (!older || !newer) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no checkpoint of tree size ${!older ? oldSize : newSize}`);
    const proof = await consistencyProof(logStore.nodeStore(pool), oldSize, newSize);
    return {
      format: CONSISTENCY_FORMAT,
      logKey: newer.logKey,
      old: await logStore.checkpointNote(pool, older),
      new: await logStore.checkpointNote(pool, newer),
      proof: proof.map(bytesToBase64),
    };
  });

  app.get<{ Params: { '*': string } }>('/log/tile/*', { config: { public: true }, schema: { summary: 'C2SP tlog-tiles hash tile', tags: ['log'] } }, async (request, reply) => {
    const path = request.params['*'];
    const entries = path.startsWith('entries/');
    const tile = parseTilePath(entries ? `0/${path.slice(8)}` : path);
    if (!tile) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'not a tile path: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N in x-prefixed 3-digit groups');
    if (entries) {
      // Authenticated here rather than by route config: the hash tiles beside it are public.
      const access = await options.authenticate(request.headers.authorization);
      if (!access.meets('audit')) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', 'entry bundles need the audit scope: leaf preimages name resource ids');
    }
    const latest = await logStore.latestCheckpoint(pool);
    const available = latest ? Math.floor(latest.treeSize / TILE_WIDTH ** tile.level) - tile.index * TILE_WIDTH : 0;
    // A full tile exists once the log holds all its nodes. A partial one is served at any width the log has reached,
    // so that proofs for an older checkpoint can be read from the tiles of its size as well as from the latest's.
    if (available < tile.width) {
      throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'no such tile at the latest checkpoint');
    }
    reply.header('content-type', 'application/octet-stream');
    if (tile.width === TILE_WIDTH) reply.header('cache-control', 'public, max-age=31536000, immutable');
    if (!entries) return reply.send(Buffer.from(await logStore.readTile(pool, tile.level, tile.index, tile.width)));
    const leaves = await logStore.readEntries(pool, tile.index * TILE_WIDTH, tile.width);
    // C2SP tlog-tiles entry bundle: each entry as a big-endian uint16 length and its bytes.
    const parts: Buffer[] = [];
    for (const leaf of leaves) {
      // Preimages are a few hundred bytes (ids, versions and names are bounded long before this); a uint16 holds them.
      if (leaf.length > 0xffff) throw new AnchorlineError('ANCHORLINE_ERR_INTERNAL', 'a leaf is longer than an entry bundle can hold');
      const length = Buffer.alloc(2);
      length.writeUInt16BE(leaf.length);
      parts.push(length, Buffer.from(leaf));
    }
    return reply.send(Buffer.concat(parts));
  });

  app.post('/log/cosignature', {
    config: { public: true },
    bodyLimit: MAX_COSIGNATURE_BODY,
    schema: { summary: "A witness's cosignature of a checkpoint (text/plain signed note)", tags: ['log'] },
  }, async (request) => {
    const body = request.body;
    const note = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
    if (note === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'send the cosigned checkpoint note as text/plain');
    const parsed = parseNote(note);
    if (!parsed.ok) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `not a signed note: ${parsed.reason}`);
    const sizeLine = parsed.value.text.split('\n')[1] ?? '';
    const size = parsePositiveId(sizeLine);
    const checkpoint = size === undefined ? undefined : await logStore.checkpointOfSize(pool, size);
    if (!checkpoint || checkpoint.text !== parsed.value.text) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'the note is not a checkpoint this log signed');
    const known = parsed.value.signatures.filter((s) => witnesses.some((w) => w.name === s.name && w.keyId === s.keyId));
    if (known.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', 'the note carries no signature by a configured witness key (anchor.witnesses)');
    const opened = openNote(note, witnesses);
    if (!opened.ok) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `a witness signature does not verify: ${opened.reason}`);
    let stored = 0;
    for (const signature of opened.value.verified) {
      const timestamp = cosignatureTimestamp(signature);
      if (!timestamp.ok) continue;
      if (await logStore.addCosignature(pool, checkpoint.treeSize, `${signature.name}+${hex8(signature.keyId)}`, formatSignatureLine(signature), timestamp.value)) stored += 1;
    }
    return { treeSize: checkpoint.treeSize, stored, cosignatures: opened.value.verified.length };
  });
}

function configuredWitnesses(keys: readonly string[]): NoteVerifier[] {
  const { verifiers, problem } = witnessVerifiers(keys);
  if (problem !== undefined) throw new Error(`anchor.witnesses: ${problem}`);
  return verifiers;
}

/** Parses `<L>/<N>[.p/<W>]` with N in C2SP's x-prefixed 3-digit groups. */
export function parseTilePath(path: string): { level: number; index: number; width: number } | undefined {
  const match = /^(\d{1,2})\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d{1,3}))?$/.exec(path);
  if (!match) return undefined;
  const level = Number(match[1]);
  const index = Number(match[2]!.replaceAll('x', '').replaceAll('/', ''));
  const width = match[3] === undefined ? TILE_WIDTH : Number(match[3]);
  if (level > 63 || !Number.isSafeInteger(index) || width < 1 || width > TILE_WIDTH || (match[3] !== undefined && width === TILE_WIDTH)) return undefined;
  if (match[1]!.length > 1 && match[1]!.startsWith('0')) return undefined;
  return { level, index, width };
}
