/**
 * The routes of people's sign-in, in one place: the OpenID Connect provider under /auth/oidc, its interaction pages
 * and the administration of accounts and apps. /auth/token and SMART discovery stay in api/oauth.ts, which hands
 * people's grants to the provider.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../config/logger.ts';
import type { Authenticator } from './authenticate.ts';
import { registerSignInAdminRoutes } from './sign-in-admin.ts';
import { registerSignInPages } from './sign-in-pages.ts';
import { OIDC_MOUNT, type SignIn } from './sign-in.ts';

export async function registerSignInRoutes(app: FastifyInstance, signIn: SignIn, authenticator: Authenticator, log: Logger): Promise<void> {
  // The provider reads its own request bodies (form posts to its token, revocation and authorization endpoints), so
  // its routes live in a scope where fastify parses nothing and leaves the request stream unread.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const route = {
      config: { public: true },
      schema: { tags: ['authorization'], summary: 'OpenID Connect provider of people signing in (authorization, token, discovery, keys)', security: [] },
    };
    scope.all(OIDC_MOUNT, route, (request, reply) => signIn.handle(request, reply));
    scope.all(`${OIDC_MOUNT}/*`, route, (request, reply) => signIn.handle(request, reply));
  });
  registerSignInPages(app, signIn, log);
  registerSignInAdminRoutes(app, { pool: signIn.pool, authenticator, secret: signIn.secret, builtInApps: () => signIn.provider() });
}
