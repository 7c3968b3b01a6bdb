/**
 * Administration of sign-in (admin scope): the people's accounts and the SMART apps they sign in through.
 * Passwords are write-only, an app's secret is shown once when the app is registered; changes to an account (links,
 * disabling) reach its tokens within auth.credentialCacheMs, at once in this process.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { signInApps, users, type SignInApp, type User, type UserChanges } from '../store/index.ts';
import type { Authenticator } from './authenticate.ts';

/** An account as the API shows it: never the password hash. */
export function userView(user: User): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    fhirUser: user.fhirUser,
    displayName: user.displayName,
    patients: user.patients,
    organization: user.organization,
    memberOf: user.memberOf,
    roles: user.roles,
    externalSubject: user.externalSubject,
    disabled: user.disabled,
    hasPassword: user.hasPassword,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
  };
}

export function appView(app: SignInApp): Record<string, unknown> {
  return { clientId: app.clientId, name: app.name, redirectUris: app.redirectUris, confidential: app.confidential, builtIn: app.builtIn, disabled: app.disabled, createdAt: app.createdAt.toISOString() };
}

const stringArray = { type: 'array', items: { type: 'string' } };
const userProperties = {
  password: { type: 'string', description: 'At least 10 characters; write-only' },
  displayName: { type: 'string' },
  patients: { ...stringArray, description: 'Patient/<id>: a patient\'s own records, or the patients a representative acts for' },
  organization: { type: ['string', 'null'], description: 'Organization/<id>' },
  memberOf: { ...stringArray, description: 'PractitionerRole/<id>, CareTeam/<id>' },
  roles: { ...stringArray, description: 'Role codes break-the-glass rules name' },
  externalSubject: { type: ['string', 'null'], description: 'Subject of this person at the external identity provider' },
};

function optionalStrings(value: unknown, location: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${location} must be an array of strings`, { location });
  return value;
}

function optionalString(value: unknown, location: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${location} must be a string`, { location });
  return value;
}

function optionalNullableString(value: unknown, location: string): string | null | undefined {
  return value === null ? null : optionalString(value, location);
}

export function registerSignInAdminRoutes(app: FastifyInstance, options: { pool: pg.Pool; authenticator: Authenticator; secret: Buffer; builtInApps: () => Promise<unknown> }): void {
  const { pool, authenticator, secret } = options;

  app.get('/admin/users', {
    config: { scope: 'admin' },
    schema: { tags: ['credentials'], summary: 'List the accounts of people who sign in' },
  }, async () => ({ users: (await users.listUsers(pool)).map(userView) }));

  app.post<{ Body: Record<string, unknown> }>('/admin/users', {
    config: { scope: 'admin' },
    schema: {
      tags: ['credentials'],
      summary: 'Create an account for a patient, representative, practitioner or registration clerk',
      body: {
        type: 'object',
        required: ['username', 'role', 'fhirUser', 'displayName'],
        properties: { username: { type: 'string' }, role: { type: 'string', enum: [...users.USER_ROLES] }, fhirUser: { type: 'string', description: 'Patient/<id>, RelatedPerson/<id> or Practitioner/<id>' }, ...userProperties },
      },
    },
  }, async (request, reply) => {
    const body = request.body ?? {};
    const externalSubject = optionalNullableString(body.externalSubject, 'externalSubject');
    const password = optionalString(body.password, 'password');
    if (password === undefined && !externalSubject) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'give a password, or an externalSubject for sign-in through the external identity provider', { location: 'password' });
    const organization = optionalNullableString(body.organization, 'organization');
    const patients = optionalStrings(body.patients, 'patients');
    const memberOf = optionalStrings(body.memberOf, 'memberOf');
    const roles = optionalStrings(body.roles, 'roles');
    const created = await users.createUser(pool, {
      username: String(body.username),
      role: body.role as users.UserRole,
      fhirUser: String(body.fhirUser),
      displayName: String(body.displayName),
      ...(password !== undefined ? { password } : {}),
      ...(patients ? { patients } : {}),
      ...(organization !== undefined ? { organization } : {}),
      ...(memberOf ? { memberOf } : {}),
      ...(roles ? { roles } : {}),
      ...(externalSubject !== undefined ? { externalSubject } : {}),
    });
    return reply.status(201).send(userView(created));
  });

  app.patch<{ Params: { id: string }; Body: Record<string, unknown> }>('/admin/users/:id', {
    config: { scope: 'admin' },
    schema: {
      tags: ['credentials'],
      summary: "Change an account's links, password or display name, or disable it",
      params: { type: 'object', properties: { id: { type: 'string' } } },
      body: { type: 'object', properties: { ...userProperties, disabled: { type: 'boolean' } } },
    },
  }, async (request) => {
    const body = request.body ?? {};
    const changes: UserChanges = {};
    const password = optionalString(body.password, 'password');
    const displayName = optionalString(body.displayName, 'displayName');
    const patients = optionalStrings(body.patients, 'patients');
    const organization = optionalNullableString(body.organization, 'organization');
    const memberOf = optionalStrings(body.memberOf, 'memberOf');
    const roles = optionalStrings(body.roles, 'roles');
    const externalSubject = optionalNullableString(body.externalSubject, 'externalSubject');
    if (password !== undefined) changes.password = password;
    if (displayName !== undefined) changes.displayName = displayName;
    if (patients !== undefined) changes.patients = patients;
    if (organization !== undefined) changes.organization = organization;
    if (memberOf !== undefined) changes.memberOf = memberOf;
    if (roles !== undefined) changes.roles = roles;
    if (externalSubject !== undefined) changes.externalSubject = externalSubject;
    if (typeof body.disabled === 'boolean') changes.disabled = body.disabled;
    const updated = await users.updateUser(pool, request.params.id, changes);
    if (!updated) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no account ${request.params.id}`);
    authenticator.forget();
    return userView(updated);
  });

  app.get('/admin/apps', {
    config: { scope: 'admin' },
    schema: { tags: ['credentials'], summary: 'List the SMART apps people sign in through' },
  }, async () => {
    await options.builtInApps();
    return { apps: (await signInApps.listApps(pool)).map(appView) };
  });

  app.post<{ Body: { name?: unknown; redirectUris?: unknown; confidential?: unknown } }>('/admin/apps', {
    config: { scope: 'admin' },
    schema: {
      tags: ['credentials'],
      summary: 'Register a SMART app (public, or confidential with a secret shown once)',
      body: { type: 'object', required: ['name', 'redirectUris'], properties: { name: { type: 'string' }, redirectUris: stringArray, confidential: { type: 'boolean' } } },
    },
  }, async (request, reply) => {
    const body = request.body ?? {};
    const created = await signInApps.createApp(pool, secret, { name: String(body.name), redirectUris: signInApps.checkRedirectUris(body.redirectUris), confidential: body.confidential === true });
    return reply.status(201).send({ ...appView(created.app), ...(created.secret ? { clientSecret: created.secret } : {}) });
  });

  app.patch<{ Params: { clientId: string }; Body: { name?: unknown; redirectUris?: unknown; disabled?: unknown } }>('/admin/apps/:clientId', {
    config: { scope: 'admin' },
    schema: {
      tags: ['credentials'],
      summary: "Change an app's name or redirect URIs, or disable it (its tokens stop working)",
      params: { type: 'object', properties: { clientId: { type: 'string' } } },
      body: { type: 'object', properties: { name: { type: 'string' }, redirectUris: stringArray, disabled: { type: 'boolean' } } },
    },
  }, async (request) => {
    const body = request.body ?? {};
    const updated = await signInApps.updateApp(pool, request.params.clientId, {
      ...(typeof body.name === 'string' ? { name: body.name } : {}),
      ...(body.redirectUris !== undefined ? { redirectUris: signInApps.checkRedirectUris(body.redirectUris) } : {}),
      ...(typeof body.disabled === 'boolean' ? { disabled: body.disabled } : {}),
    });
    if (!updated) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no app ${request.params.clientId}`);
    authenticator.forget();
    return appView(updated);
  });
}
