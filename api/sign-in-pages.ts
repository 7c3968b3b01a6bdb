/**
 * The interaction pages of sign-in, through oidc-provider's interaction API: when an authorization request needs the
 * person (no session: login; no grant: approval), the provider sends the browser to /auth/interaction/<uid>, and
 * these routes resolve that interaction and send the browser back to the provider.
 *
 *   login     username and password (store/users.ts); a wrong pair, an unknown name and a disabled account get the
 *             same answer.
 *   approval  the scopes the app asked for, split into those the person's role may hold and those it may not
 *             (api/person-scopes.ts), and the SMART launch context: a patient is launched with their first linked
 *             patient record, a representative with several patients chooses one of them, a practitioner or
 *             registration clerk enters the id of a Patient the engine holds. Staff get patient/ scopes only for
 *             the patient they chose.
 *
 * Logs name account ids and client ids, never usernames, passwords or patients.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorFields, type Logger } from '../config/logger.ts';
import { resources, signInApps, users, type User } from '../store/index.ts';
import { isUserScope, SIGN_IN_SCOPES } from './access.ts';
import { personScopes } from './person-scopes.ts';
import { consentPage, describeScope, errorPage, loginPage, PAGE_CSP, type ConsentPage } from './sign-in-html.ts';
import type { SignIn } from './sign-in.ts';

type Interaction = Awaited<ReturnType<Awaited<ReturnType<SignIn['provider']>>['interactionDetails']>>;

const PATIENT_ID = /^[A-Za-z0-9.-]{1,64}$/;
const LOGIN_REFUSED = 'The username or password is not correct, or the account is disabled.';

function isSignInScope(scope: string): boolean {
  return (SIGN_IN_SCOPES as readonly string[]).includes(scope);
}

function form(request: FastifyRequest): URLSearchParams {
  return new URLSearchParams(typeof request.body === 'string' ? request.body : '');
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.status(status).header('content-type', 'text/html; charset=utf-8').header('content-security-policy', PAGE_CSP).header('cache-control', 'no-store').header('x-frame-options', 'DENY').send(body);
}

/**
 * How a linked patient record reads on the approval page: the name and record number it holds (`김민지 · B-000777`),
 * so that a person with records at several hospitals, or a representative, knows which one the app will see. The
 * person is shown only their own records or those they represent.
 */
async function patientLabel(pool: SignIn['pool'], reference: string): Promise<string> {
  const stored = await resources.readCurrent(pool, 'Patient', reference.slice('Patient/'.length));
  const content = stored?.content as { name?: Array<{ text?: string; family?: string; given?: string[] }>; identifier?: Array<{ value?: string }> } | undefined;
  const name = content?.name?.[0];
  const written = name?.text ?? [name?.family, ...(name?.given ?? [])].filter(Boolean).join(' ');
  const number = content?.identifier?.find((i) => typeof i.value === 'string')?.value;
  return [written || undefined, number].filter(Boolean).join(' · ') || reference;
}

/** What the approval page offers for the launch context, from the person's links and what the app asked. */
async function launchChoice(pool: SignIn['pool'], user: User, wantsPatient: boolean): Promise<Pick<ConsentPage, 'patientChoice' | 'launchPatient' | 'launchPatientLabel'>> {
  if (!wantsPatient) return {};
  if (user.role === 'practitioner' || user.role === 'registration') return { patientChoice: { kind: 'entry' } };
  if (user.role === 'representative' && user.patients.length > 1) {
    return { patientChoice: { kind: 'list', options: await Promise.all(user.patients.map(async (p) => ({ id: p.slice('Patient/'.length), label: await patientLabel(pool, p) }))) } };
  }
  const first = user.patients[0];
  return first ? { launchPatient: first.slice('Patient/'.length), launchPatientLabel: await patientLabel(pool, first) } : {};
}

export function registerSignInPages(app: FastifyInstance, signIn: SignIn, log: Logger): void {
  const pool = signIn.pool;
  const params = { type: 'object', properties: { uid: { type: 'string' } } };

  /** The interaction the browser's cookie names, if it is the one in the URL; else an error page was sent. */
  async function interaction(request: FastifyRequest<{ Params: { uid: string } }>, reply: FastifyReply): Promise<Interaction | undefined> {
    const provider = await signIn.provider();
    try {
      const details = await provider.interactionDetails(request.raw, reply.raw);
      if (details.uid === request.params.uid) return details;
    } catch {
      // Expired, or the cookie is missing: the same answer below.
    }
    html(reply, 400, errorPage.render('This sign-in has expired or was opened in another browser. Go back to the app and start again.'));
    return undefined;
  }

  async function appName(details: Interaction): Promise<string> {
    const found = await signInApps.findApp(pool, String(details.params.client_id));
    return found?.name ?? String(details.params.client_id);
  }

  async function finish(request: FastifyRequest, reply: FastifyReply, result: Parameters<Awaited<ReturnType<SignIn['provider']>>['interactionResult']>[2]): Promise<FastifyReply> {
    const provider = await signIn.provider();
    const returnTo = await provider.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: true });
    return reply.status(303).header('cache-control', 'no-store').redirect(returnTo, 303);
  }

  /** The approval page's view, for the person signed in to this interaction. */
  async function consentView(details: Interaction, user: User, chosen?: { patient?: string; error?: string }): Promise<ConsentPage> {
    const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
    const choice = await launchChoice(pool, user, requested.includes('launch/patient'));
    const willHavePatient = choice.launchPatient !== undefined || choice.patientChoice !== undefined;
    const decision = personScopes(user.role, requested, willHavePatient);
    const refused = new Map(decision.refused.map((r) => [r.scope, r.reason]));
    return {
      uid: details.uid,
      appName: await appName(details),
      personName: user.displayName,
      scopes: requested.map((scope) => ({ scope, text: describeScope(scope), ...(refused.has(scope) ? { refusedBecause: refused.get(scope)! } : {}) })),
      ...choice,
      ...(choice.patientChoice?.kind === 'entry' && chosen?.patient ? { patientChoice: { kind: 'entry' as const, value: chosen.patient } } : {}),
      ...(chosen?.error ? { error: chosen.error } : {}),
    };
  }

  async function signedInUser(details: Interaction): Promise<User | undefined> {
    const accountId = details.session?.accountId;
    const user = accountId ? await users.findUser(pool, accountId) : undefined;
    return user && !user.disabled ? user : undefined;
  }

  app.get<{ Params: { uid: string } }>('/auth/interaction/:uid', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: 'Sign-in page of an authorization in progress (login or approval)', params, security: [] },
  }, async (request, reply) => {
    const details = await interaction(request, reply);
    if (!details) return reply;
    if (details.prompt.name === 'login') return html(reply, 200, loginPage({ uid: details.uid, appName: await appName(details) }));
    if (details.prompt.name === 'consent') {
      const user = await signedInUser(details);
      if (!user) return html(reply, 403, errorPage.render('This account cannot sign in. Ask the hospital to check it.'));
      return html(reply, 200, consentPage(await consentView(details, user)));
    }
    return html(reply, 400, errorPage.render('This sign-in step is not supported.'));
  });

  app.post<{ Params: { uid: string } }>('/auth/interaction/:uid/login', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: 'Submit the login form (username, password)', params, security: [] },
  }, async (request, reply) => {
    const details = await interaction(request, reply);
    if (!details) return reply;
    if (details.prompt.name !== 'login') return html(reply, 400, errorPage.render('This sign-in is past the login step. Go back to the app and start again.'));
    const body = form(request);
    const username = body.get('username') ?? '';
    const user = await users.verifyPassword(pool, username, body.get('password') ?? '');
    const client = String(details.params.client_id);
    if (!user) {
      log.info({ app: client }, 'sign-in: login refused');
      return html(reply, 401, loginPage({ uid: details.uid, appName: await appName(details), username, error: LOGIN_REFUSED }));
    }
    log.info({ userId: user.id, app: client }, 'sign-in: login accepted');
    return finish(request, reply, { login: { accountId: user.id, remember: false, amr: ['pwd'] } });
  });

  app.post<{ Params: { uid: string } }>('/auth/interaction/:uid/confirm', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: 'Approve the scopes an app asked for (and choose the patient)', params, security: [] },
  }, async (request, reply) => {
    const details = await interaction(request, reply);
    if (!details) return reply;
    if (details.prompt.name !== 'consent') return html(reply, 400, errorPage.render('This sign-in is not waiting for an approval. Go back to the app and start again.'));
    const user = await signedInUser(details);
    if (!user) return html(reply, 403, errorPage.render('This account cannot sign in. Ask the hospital to check it.'));

    const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
    const choice = await launchChoice(pool, user, requested.includes('launch/patient'));
    let launchPatient = choice.launchPatient;
    if (choice.patientChoice) {
      const picked = (form(request).get('patient') ?? '').trim().replace(/^Patient\//, '');
      const again = async (error: string): Promise<FastifyReply> => html(reply, 400, consentPage(await consentView(details, user, { patient: picked, error })));
      if (choice.patientChoice.kind === 'list') {
        if (!choice.patientChoice.options.some((o) => o.id === picked)) return again('Choose one of the patients you act for.');
      } else {
        const stored = PATIENT_ID.test(picked) ? await resources.readCurrent(pool, 'Patient', picked) : undefined;
        if (!stored || stored.deleted) return again(`There is no patient with the id ${JSON.stringify(picked)}.`);
      }
      launchPatient = picked;
    }

    const decision = personScopes(user.role, requested, launchPatient !== undefined);
    const provider = await signIn.provider();
    const { fhirBase } = signIn.urls();
    const grant = new provider.Grant({ accountId: user.id, clientId: String(details.params.client_id) });
    const grantedOidc = decision.granted.filter(isSignInScope);
    const grantedResource = decision.granted.filter((s) => !isSignInScope(s));
    if (grantedOidc.length > 0) grant.addOIDCScope(grantedOidc.join(' '));
    if (grantedResource.length > 0) grant.addResourceScope(fhirBase, grantedResource.join(' '));
    // Refused scopes are recorded as rejected, so that the provider does not ask for them again in a loop.
    const refusedOidc = decision.refused.map((r) => r.scope).filter(isSignInScope);
    const refusedResource = decision.refused.map((r) => r.scope).filter((s) => !isSignInScope(s) && isUserScope(s));
    if (refusedOidc.length > 0) grant.rejectOIDCScope(refusedOidc.join(' '));
    if (refusedResource.length > 0) grant.rejectResourceScope(fhirBase, refusedResource.join(' '));
    const claims = (details.prompt.details as { missingOIDCClaims?: string[] }).missingOIDCClaims;
    if (claims?.length) grant.addOIDCClaims(claims);
    const grantId = await grant.save();
    if (launchPatient !== undefined && decision.granted.includes('launch/patient')) await signIn.saveLaunchContext(grantId, { patient: launchPatient });
    log.info({ userId: user.id, app: String(details.params.client_id), granted: decision.granted.length, refused: decision.refused.length }, 'sign-in: app approved');
    return finish(request, reply, { consent: { grantId } });
  });

  app.post<{ Params: { uid: string } }>('/auth/interaction/:uid/abort', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: 'Cancel sign-in or deny the app (the app receives access_denied)', params, security: [] },
  }, async (request, reply) => {
    const details = await interaction(request, reply);
    if (!details) return reply;
    try {
      return await finish(request, reply, { error: 'access_denied', error_description: 'the person did not allow access' });
    } catch (error) {
      log.warn({ ...errorFields(error) }, 'sign-in: abort failed');
      return html(reply, 400, errorPage.render('This sign-in could not be cancelled; close this page.'));
    }
  });
}
