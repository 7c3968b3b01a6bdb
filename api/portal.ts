/**
 * The patient portal: static files (web/dist/portal, built from web/portal with the console) at /portal/, its
 * sign-in callback /portal/callback, and GET /me, which tells a signed-in person's app who they are and which
 * Patient records are theirs.
 *
 * The files are public and hold no data: the portal signs the person in through the engine's SMART authorization
 * server as the public client `anchorline-portal` and reads everything with the person's own token, so consent and
 * scopes guard it like any other app. The same strict Content-Security-Policy as the console's keeps the page to the
 * engine's origin; the only difference is form-action, which allows the engine itself, where sign-in forms post and
 * the authorization server redirects back to.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
// The swagger plugin's FastifySchema fields (summary, tags, hide) that the generated API docs read.
import type {} from '@fastify/swagger';
import { AnchorlineError } from '../errors/index.ts';
import type { Logger } from '../config/logger.ts';
import { appContentSecurityPolicy, serveStaticApp } from './console.ts';
import { PORTAL_DIST_DIR, buildConsole, consoleBuildIsCurrent, CONSOLE_DIST_DIR } from '../web/index.ts';

const CONTENT_SECURITY_POLICY = appContentSecurityPolicy("'self'");

export interface PortalOptions {
  log: Logger;
  /** Where the built console is (the portal is its `portal/` folder); default web/dist. */
  distDir?: string;
}

function securityHeaders(reply: { header(name: string, value: string): unknown }): void {
  reply.header('cache-control', 'no-cache');
  reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
  reply.header('x-content-type-options', 'nosniff');
  // The callback's address holds the authorization code until the page replaces it: no Referer may carry it away.
  reply.header('referrer-policy', 'no-referrer');
}

export async function registerPortalRoutes(app: FastifyInstance, options: PortalOptions): Promise<void> {
  const consoleRoot = options.distDir ?? CONSOLE_DIST_DIR;
  const root = options.distDir ? path.join(options.distDir, 'portal') : PORTAL_DIST_DIR;
  // The console's routes build both when they are served; an engine without the console builds here.
  if (!(await consoleBuildIsCurrent(consoleRoot))) {
    try {
      const built = await buildConsole({ outDir: consoleRoot });
      options.log.info({ dir: built.outDir, ms: built.ms }, 'portal: built the web console and the patient portal');
    } catch (error) {
      options.log.warn({ dir: root, err: (error as Error).message }, 'portal: could not build the patient portal; run npm run build:web');
    }
  }

  // Who the signed-in person is: what the portal needs to find all their records. A person's token only; system
  // credentials act for no person. Like the FHIR reads, it asks for some read scope (the portal's token always has
  // patient/ ones), so that a token good only for identity does not open it.
  app.get('/me', {
    config: { scope: 'read' },
    schema: {
      tags: ['portal'],
      summary: 'The signed-in person',
      description: 'For a person signed in through SMART App Launch: {userId, role, fhirUser, name, patients}, patients being the Patient records (`Patient/x`) they are, at every facility, or represent. 403 for API keys and client credentials.',
    },
  }, async (request) => {
    const access = request.access;
    const person = access?.person;
    if (!access || !person) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', 'GET /me is for people signed in through SMART App Launch; this credential is not a person');
    return { userId: person.userId, role: person.role, fhirUser: person.fhirUser, name: access.principal.name, patients: [...person.patients] };
  });

  // The authorization server sends the person back here with the code: the portal's page finishes the sign-in.
  app.get('/portal/callback', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    let page: Buffer;
    try {
      page = await readFile(path.join(root, 'index.html'));
    } catch {
      throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'the patient portal is not built; run npm run build:web');
    }
    securityHeaders(reply);
    return reply.type('text/html; charset=utf-8').send(page);
  });

  await serveStaticApp(app, { root, prefix: '/portal/', setHeaders: (reply) => securityHeaders(reply) });
}
