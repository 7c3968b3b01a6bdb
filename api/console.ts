/**
 * The web console: static files (web/dist, built from web/src) at /console/, and / redirecting there.
 *
 * The files are public: they hold the app and nothing else, no patient data and no key. The app asks the operator
 * for an API key and sends it as a bearer token on every API call, so the data behind it is guarded exactly like
 * any other client's. A strict Content-Security-Policy keeps the page to the engine's own origin.
 *
 * When the build is missing or older than its sources (the engine started without `npm start`, which builds it
 * first), it is built here before the routes are served.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
// The swagger plugin's FastifySchema fields (summary, tags, hide) that the generated API docs read.
import type {} from '@fastify/swagger';
import type { Logger } from '../config/logger.ts';
import { CONSOLE_DIST_DIR, buildConsole, consoleBuildIsCurrent } from '../web/index.ts';

/**
 * The Content-Security-Policy of a browser app the engine serves: everything from the engine's own origin and nothing
 * else; `formAction` is where its forms may go ('none' for the console; the portal's sign-in needs 'self').
 */
export function appContentSecurityPolicy(formAction: "'none'" | "'self'"): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    `form-action ${formAction}`,
  ].join('; ');
}

const CONTENT_SECURITY_POLICY = appContentSecurityPolicy("'none'");

export interface ConsoleOptions {
  log: Logger;
  /** Where the built console is; default web/dist. */
  distDir?: string;
}

export async function registerConsoleRoutes(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const root = options.distDir ?? CONSOLE_DIST_DIR;
  if (!(await consoleBuildIsCurrent(root))) {
    try {
      const built = await buildConsole({ outDir: root });
      options.log.info({ dir: built.outDir, ms: built.ms }, 'console: built the web console');
    } catch (error) {
      // The API does not depend on the console: serve what is there (an older build, or nothing) and say why.
      options.log.warn({ dir: root, err: (error as Error).message }, 'console: could not build the web console; run npm run build:web');
    }
  }

  app.get('/', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => reply.redirect('/console/', 302));

  await serveStaticApp(app, {
    root,
    prefix: '/console/',
    setHeaders: (reply) => {
      // The files change with every build and are small: revalidate (ETag) rather than cache blindly.
      reply.header('cache-control', 'no-cache');
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    },
  });
}

/**
 * Serves a built browser app's files under `prefix` (index.html for the folder): public, left out of the API docs,
 * with the app's own headers on every file. The console and the patient portal are served this way.
 */
export async function serveStaticApp(app: FastifyInstance, options: { root: string; prefix: string; setHeaders: (reply: { header(name: string, value: string): unknown }) => void }): Promise<void> {
  await app.register(async (scope) => {
    // Every route the static plugin adds is public and left out of the API docs.
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), public: true };
      route.schema = { ...(route.schema ?? {}), hide: true };
    });
    await scope.register(fastifyStatic, {
      root: options.root,
      prefix: options.prefix,
      decorateReply: false,
      redirect: true,
      index: 'index.html',
      cacheControl: false,
      setHeaders: (reply) => options.setHeaders(reply),
    });
  });
}
