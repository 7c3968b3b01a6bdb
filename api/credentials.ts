/**
 * Credential management (admin scope): API keys and OAuth clients, each with scopes and an optional source binding.
 * A key or client secret is shown once, in the response that creates it; only hashes are stored.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { apiKeys, oauthClients } from '../store/index.ts';
import { parseScopeList } from './access.ts';
import type { Authenticator } from './authenticate.ts';
import { parsePositiveId } from './params.ts';

const scopesSchema = { type: 'array', items: { type: 'string' }, minItems: 1, description: 'SMART v2 system scopes (system/Patient.rs, system/*.cruds) and ingest, audit, terminology, admin' };
const sourceSchema = { type: 'string', description: 'Name of a configured source (config `sources`) the credential is bound to' };

/** The source a credential is to be bound to: absent, or the name of a configured source. Shared with the CLI. */
export function boundSourceName(source: unknown, sourceNames: readonly string[]): string | null {
  if (source === undefined || source === null) return null;
  if (typeof source !== 'string' || !sourceNames.includes(source)) {
    const configured = sourceNames.length > 0 ? sourceNames.join(', ') : 'none are configured';
    const what = typeof source === 'string' ? `source ${source} is not a configured source` : 'source must name a configured source';
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${what} (${configured})`, { location: 'source' });
  }
  return source;
}

/** A client's JWK Set for private_key_jwt: public keys only, at least one. Shared with the CLI. */
export function publicKeySet(jwks: unknown): { keys: Array<Record<string, unknown>> } {
  const keys = (jwks as { keys?: unknown } | null | undefined)?.keys;
  const publicOnly = Array.isArray(keys) && keys.length > 0 && keys.every((k) => k && typeof k === 'object' && typeof (k as { kty?: unknown }).kty === 'string' && !('d' in (k as object)));
  if (!publicOnly) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'jwks must be a JWK Set of public keys ({"keys": [...]}, no private parts)', { location: 'jwks' });
  return { keys: keys as Array<Record<string, unknown>> };
}

export function registerCredentialRoutes(app: FastifyInstance, pool: pg.Pool, authenticator: Authenticator, sourceNames: readonly string[]): void {
  const checkSource = (source: unknown): string | null => boundSourceName(source, sourceNames);
  const checkScopes = (scopes: unknown): string[] => {
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string')) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'scopes must be a non-empty array of strings', { location: 'scopes' });
    }
    return parseScopeList(scopes as string[]);
  };
  const checkName = (name: unknown): string => {
    if (typeof name !== 'string' || name.trim() === '' || name.length > 200) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'name must be a non-empty string', { location: 'name' });
    return name;
  };

  app.post<{ Body: { name?: unknown; scopes?: unknown; source?: unknown } }>('/admin/api-keys', {
    config: { scope: 'admin' },
    schema: {
      tags: ['credentials'],
      summary: 'Create an API key (shown once)',
      body: { type: 'object', properties: { name: { type: 'string' }, scopes: scopesSchema, source: sourceSchema } },
    },
  }, async (request, reply) => {
    const body = request.body ?? {};
    const created = await apiKeys.createApiKey(pool, checkName(body.name), checkScopes(body.scopes), undefined, checkSource(body.source));
    return reply.status(201).send({ id: created.info.id, name: created.info.name, scopes: created.info.scopes, source: created.info.source, key: created.key });
  });

  app.get('/admin/api-keys', {
    config: { scope: 'admin' },
    schema: { tags: ['credentials'], summary: 'List active API keys (never the keys themselves)' },
  }, async () => ({ keys: (await apiKeys.listApiKeys(pool)).map((k) => ({ ...k, createdAt: k.createdAt.toISOString() })) }));

  app.delete<{ Params: { id: string } }>('/admin/api-keys/:id', {
    config: { scope: 'admin' },
    schema: { tags: ['credentials'], summary: 'Revoke an API key', params: { type: 'object', properties: { id: { type: 'string' } } } },
  }, async (request, reply) => {
    const id = parsePositiveId(request.params.id);
    if (id === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'key id must be a positive integer in decimal digits', { location: 'id' });
    if (!(await apiKeys.revokeApiKey(pool, id))) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no active key ${id}`);
    authenticator.forget();
    return reply.status(204).send();
  });

  app.post<{ Body: { name?: unknown; scopes?: unknown; source?: unknown; jwks?: unknown; secret?: unknown } }>('/admin/clients', {
    config: { scope: 'admin' },
    schema: {
      tags: ['credentials'],
      summary: 'Register an OAuth client for the client-credentials grant',
      description: 'With `jwks` (a JWK Set of public keys) the client authenticates with private_key_jwt; otherwise, or with `secret: true`, a client secret is generated and returned once.',
      body: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          scopes: scopesSchema,
          source: sourceSchema,
          jwks: { type: 'object', properties: { keys: { type: 'array', items: { type: 'object' } } } },
          secret: { type: 'boolean' },
        },
      },
    },
  }, async (request, reply) => {
    const body = request.body ?? {};
    const jwks = body.jwks === undefined ? null : publicKeySet(body.jwks);
    const created = await oauthClients.createClient(pool, {
      name: checkName(body.name),
      scopes: checkScopes(body.scopes),
      source: checkSource(body.source),
      jwks,
      ...(typeof body.secret === 'boolean' ? { withSecret: body.secret } : {}),
    });
    const { client } = created;
    return reply.status(201).send({ clientId: client.clientId, name: client.name, scopes: client.scopes, source: client.source, ...(created.secret ? { clientSecret: created.secret } : {}) });
  });

  app.get('/admin/clients', {
    config: { scope: 'admin' },
    schema: { tags: ['credentials'], summary: 'List active OAuth clients' },
  }, async () => ({
    clients: (await oauthClients.listClients(pool)).map((c) => ({ clientId: c.clientId, name: c.name, scopes: c.scopes, source: c.source, hasSecret: c.hasSecret, hasJwks: c.jwks !== null, createdAt: c.createdAt.toISOString() })),
  }));

  app.delete<{ Params: { clientId: string } }>('/admin/clients/:clientId', {
    config: { scope: 'admin' },
    schema: { tags: ['credentials'], summary: 'Revoke an OAuth client (its tokens stop working)', params: { type: 'object', properties: { clientId: { type: 'string' } } } },
  }, async (request, reply) => {
    if (!(await oauthClients.revokeClient(pool, request.params.clientId))) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no active client ${request.params.clientId}`);
    authenticator.forget();
    return reply.status(204).send();
  });
}
