/**
 * Mapping config administration (admin scope):
 *   GET  /admin/mappings                   every config: its active version (with content) and deployment history
 *   POST /admin/mappings/{name}/rollback   body {"sha256": "<version>"}: make an earlier version active again
 *   GET  /mappings/sha256/{digest}         the stored configuration a leaf's mappingSha256 names (audit or admin scope),
 *                                          as its RFC 8785 canonical JSON, so that its SHA-256 is the digest
 *
 * Both work on the database alone; every engine and worker process maps with the new active version within its
 * registry's poll interval (mapping.pollIntervalMs, default 2 s), and keeps it until the config's file changes.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { canonicalBytes } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { mappingConfigs } from '../store/index.ts';
import { listMappingConfigs, rollbackMappingConfig } from '../workers/index.ts';

export function registerMappingRoutes(app: FastifyInstance, pool: pg.Pool): void {
  app.get<{ Params: { digest: string } }>(
    '/mappings/sha256/:digest',
    {
      config: { scope: 'audit' },
      schema: {
        summary: 'The mapping configuration a provenance leaf names',
        description: "The stored configuration whose SHA-256 is a leaf's mappingSha256, as its canonical JSON (RFC 8785): the SHA-256 of the body is the digest.",
        tags: ['proofs'],
      },
    },
    async (request, reply) => {
      const digest = request.params.digest;
      if (!/^[0-9a-f]{64}$/.test(digest)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the digest is 64 lowercase hex digits');
      const content = (await mappingConfigs.mappingConfigsByDigest(pool, [digest])).get(digest);
      if (content === undefined) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'no mapping configuration is stored under that digest');
      return reply.header('content-type', 'application/json; charset=utf-8').send(Buffer.from(canonicalBytes(content)));
    },
  );

  app.get(
    '/admin/mappings',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Mapping configs and their versions',
        description: 'Every mapping config: its active version (with content) and its deployment history (file changes, rollbacks).',
        tags: ['admin'],
      },
    },
    async () => ({ configs: await listMappingConfigs(pool) }),
  );

  const rollbackSchema = {
    summary: 'Roll a mapping config back to an earlier version',
    description: 'Makes an earlier version active again, in every engine and worker within mapping.pollIntervalMs; it stays active until the config file changes.',
    tags: ['admin'],
    params: { type: 'object', properties: { name: { type: 'string', description: "The config's name (its file name without extension)" } }, required: ['name'] },
    body: { type: 'object', properties: { sha256: { type: 'string', description: 'The version to make active (lowercase hex SHA-256, from GET /admin/mappings)' } } },
  };
  app.post<{ Params: { name: string }; Body: { sha256?: unknown } }>('/admin/mappings/:name/rollback', { config: { scope: 'admin' }, schema: rollbackSchema }, async (request) => {
    const sha256 = request.body?.sha256;
    if (typeof sha256 !== 'string') throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'send {"sha256": "<version to make active>"}');
    return rollbackMappingConfig(pool, request.params.name, sha256);
  });
}
