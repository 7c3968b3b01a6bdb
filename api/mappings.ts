/**
 * Mapping config administration (admin scope):
 *   GET  /admin/mappings                   every config: its active version (with content) and deployment history
 *   POST /admin/mappings/{name}/rollback   body {"sha256": "<version>"}: make an earlier version active again
 *
 * Both work on the database alone; every engine and worker process maps with the new active version within its
 * registry's poll interval (mapping.pollIntervalMs, default 2 s), and keeps it until the config's file changes.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { listMappingConfigs, rollbackMappingConfig } from '../workers/index.ts';

export function registerMappingRoutes(app: FastifyInstance, pool: pg.Pool): void {
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
