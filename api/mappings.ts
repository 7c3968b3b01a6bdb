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
import { listMappingConfigs, rollbackMappingConfig } from '../config/index.ts';

export function registerMappingRoutes(app: FastifyInstance, pool: pg.Pool): void {
  app.get('/admin/mappings', { config: { scope: 'admin' } }, async () => ({ configs: await listMappingConfigs(pool) }));

  app.post<{ Params: { name: string }; Body: { sha256?: unknown } }>('/admin/mappings/:name/rollback', { config: { scope: 'admin' } }, async (request) => {
    const sha256 = request.body?.sha256;
    if (typeof sha256 !== 'string') throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'send {"sha256": "<version to make active>"}');
    return rollbackMappingConfig(pool, request.params.name, sha256);
  });
}
