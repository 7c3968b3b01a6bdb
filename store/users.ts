/**
 * People who sign in (see migration 0018): patients, their legal representatives, practitioners and registration
 * staff. An account links the person to FHIR: the resource that is them (`fhirUser`), the patients they are or act
 * for, their organisation and what else a consent may name them by.
 *
 * Passwords are kept as scrypt hashes (node:crypto) with a random salt and the cost parameters, so that the cost can
 * be raised later without invalidating existing hashes; they are compared in constant time. An account without a
 * password signs in only through the external identity provider (auth.externalIdp), matched by `externalSubject`.
 * Accounts are disabled, never deleted: audit events keep naming them.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { AnchorlineError } from '../errors/index.ts';
import type { Queryable } from './db.ts';

export const USER_ROLES = ['patient', 'representative', 'practitioner', 'registration'] as const;
export type UserRole = (typeof USER_ROLES)[number];

export interface User {
  /** The account's id (decimal digits); the `sub` of the person's tokens. */
  id: string;
  username: string;
  role: UserRole;
  /** `Patient/x`, `RelatedPerson/x` or `Practitioner/x`. */
  fhirUser: string;
  displayName: string;
  /** `Patient/x`: a patient's own records (one per facility), or the patients a representative acts for. */
  patients: string[];
  /** `Organization/x`, for practitioners and staff. */
  organization: string | null;
  /** `PractitionerRole/x`, `CareTeam/x`. */
  memberOf: string[];
  /** Role codes that break-the-glass rules name. */
  roles: string[];
  /** The subject (auth.externalIdp.subjectClaim) of this person's tokens from the external identity provider. */
  externalSubject: string | null;
  disabled: boolean;
  hasPassword: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewUser {
  username: string;
  /** Absent: no password sign-in (external identity provider only). */
  password?: string;
  role: UserRole;
  fhirUser: string;
  displayName: string;
  patients?: string[];
  organization?: string | null;
  memberOf?: string[];
  roles?: string[];
  externalSubject?: string | null;
}

/** What an administrator may change on an account. */
export interface UserChanges {
  password?: string;
  displayName?: string;
  patients?: string[];
  organization?: string | null;
  memberOf?: string[];
  roles?: string[];
  externalSubject?: string | null;
  disabled?: boolean;
}

/** scrypt cost: N = 2^15, r = 8 (about 100 ms and 32 MiB per hash here); stored with each hash. */
const SCRYPT_COST = { N: 32_768, r: 8, p: 1 };
const SCRYPT_KEY_BYTES = 32;
const MIN_PASSWORD_LENGTH = 10;
const MAX_PASSWORD_LENGTH = 1_024;

const REFERENCE_ID = '[A-Za-z0-9.-]{1,64}';
const FHIR_USER_TYPE: Record<UserRole, string> = { patient: 'Patient', representative: 'RelatedPerson', practitioner: 'Practitioner', registration: 'Practitioner' };

function scrypt(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...cost, maxmem: 128 * cost.N * cost.r * 2 };
  return new Promise((resolve, reject) => scryptCallback(password.normalize('NFC'), salt, SCRYPT_KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key))));
}

/** `scrypt:N:r:p:<salt>:<hash>` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  checkPassword(password);
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, SCRYPT_COST);
  return ['scrypt', SCRYPT_COST.N, SCRYPT_COST.r, SCRYPT_COST.p, salt.toString('base64url'), hash.toString('base64url')].join(':');
}

/** True when `password` matches `stored`; a malformed or absent hash matches nothing. */
export async function passwordMatches(stored: string | null, password: string): Promise<boolean> {
  const parts = stored?.split(':');
  if (!parts || parts.length !== 6 || parts[0] !== 'scrypt' || password.length > MAX_PASSWORD_LENGTH) {
    // Spend the time a real comparison takes, so that a missing account does not answer faster than a wrong password.
    await scrypt(password.slice(0, MAX_PASSWORD_LENGTH), Buffer.alloc(16), SCRYPT_COST);
    return false;
  }
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function invalid(detail: string, location: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', detail, { location });
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw invalid(`a password has ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`, 'password');
  }
}

function references(values: readonly string[] | undefined, types: readonly string[], location: string): string[] {
  const pattern = new RegExp(`^(${types.join('|')})/${REFERENCE_ID}$`);
  for (const value of values ?? []) {
    if (typeof value !== 'string' || !pattern.test(value)) throw invalid(`${location} holds references ${types.map((t) => `${t}/<id>`).join(' or ')}; ${JSON.stringify(value)} is not one`, location);
  }
  return [...new Set(values ?? [])];
}

/** The role's links, checked against each other: a patient's fhirUser is one of their patients, staff have none. */
function checkLinks(role: UserRole, fhirUser: string, patients: string[]): string[] {
  if (!new RegExp(`^${FHIR_USER_TYPE[role]}/${REFERENCE_ID}$`).test(fhirUser)) throw invalid(`the fhirUser of a ${role} is ${FHIR_USER_TYPE[role]}/<id>`, 'fhirUser');
  if (role === 'patient') return patients.includes(fhirUser) ? patients : [fhirUser, ...patients];
  if ((role === 'practitioner' || role === 'registration') && patients.length > 0) {
    throw invalid(`a ${role} has no linked patients: they reach a patient by choosing one when an app launches`, 'patients');
  }
  return patients;
}

function checkText(value: string, location: string, pattern: RegExp, rule: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw invalid(`${location} ${rule}`, location);
  return value;
}

const USERNAME = /^[A-Za-z0-9._@-]{1,128}$/;
const ROLE_CODE = /^[A-Za-z0-9._-]{1,64}$/;

interface Row {
  id: string;
  username: string;
  password_hash: string | null;
  role: UserRole;
  fhir_user: string;
  display_name: string;
  patients: string[];
  organization: string | null;
  member_of: string[];
  roles: string[];
  external_subject: string | null;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id::text AS id, username, password_hash, role, fhir_user, display_name, patients, organization, member_of, roles, external_subject, disabled, created_at, updated_at';

function toUser(row: Row): User {
  return {
    id: row.id,
    username: row.username,
    role: row.role,
    fhirUser: row.fhir_user,
    displayName: row.display_name,
    patients: row.patients,
    organization: row.organization,
    memberOf: row.member_of,
    roles: row.roles,
    externalSubject: row.external_subject,
    disabled: row.disabled,
    hasPassword: row.password_hash !== null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Unique violations as a coded error naming what is taken. */
function conflict(error: unknown): never {
  const pgError = error as { code?: string; constraint?: string };
  if (pgError.code === '23505') {
    const what = pgError.constraint?.includes('external_subject') ? 'externalSubject' : 'username';
    throw invalid(`another account has this ${what}`, what);
  }
  throw error;
}

export async function createUser(db: Queryable, user: NewUser): Promise<User> {
  const role = user.role;
  if (!(USER_ROLES as readonly string[]).includes(role)) throw invalid(`role is one of ${USER_ROLES.join(', ')}`, 'role');
  const username = checkText(user.username, 'username', USERNAME, 'is 1-128 letters, digits, ".", "_", "@" or "-"');
  const displayName = checkText(user.displayName, 'displayName', /^\S.{0,199}$/su, 'is 1-200 characters');
  const patients = checkLinks(role, user.fhirUser, references(user.patients, ['Patient'], 'patients'));
  const organization = user.organization == null ? null : references([user.organization], ['Organization'], 'organization')[0]!;
  const memberOf = references(user.memberOf, ['PractitionerRole', 'CareTeam'], 'memberOf');
  const roles = (user.roles ?? []).map((code) => checkText(code, 'roles', ROLE_CODE, 'are codes of 1-64 letters, digits, ".", "_" or "-"'));
  const passwordHash = user.password === undefined ? null : await hashPassword(user.password);
  try {
    const result = await db.query<Row>(
      `INSERT INTO user_account (username, password_hash, role, fhir_user, display_name, patients, organization, member_of, roles, external_subject)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
      [username, passwordHash, role, user.fhirUser, displayName, patients, organization, memberOf, [...new Set(roles)], user.externalSubject ?? null],
    );
    return toUser(result.rows[0]!);
  } catch (error) {
    conflict(error);
  }
}

/** The account with this id, disabled or not. */
export async function findUser(db: Queryable, id: string): Promise<User | undefined> {
  if (!/^[0-9]{1,18}$/.test(id)) return undefined;
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM user_account WHERE id = $1`, [id]);
  return result.rows[0] ? toUser(result.rows[0]) : undefined;
}

export async function findUserByUsername(db: Queryable, username: string): Promise<User | undefined> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM user_account WHERE username = $1`, [username]);
  return result.rows[0] ? toUser(result.rows[0]) : undefined;
}

/** The account the external identity provider calls `subject`, disabled or not. */
export async function findUserByExternalSubject(db: Queryable, subject: string): Promise<User | undefined> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM user_account WHERE external_subject = $1`, [subject]);
  return result.rows[0] ? toUser(result.rows[0]) : undefined;
}

/**
 * The enabled account with this username and password; undefined when either is wrong or the account is disabled.
 * Every answer costs one scrypt, so that timing does not tell which usernames exist.
 */
export async function verifyPassword(db: Queryable, username: string, password: string): Promise<User | undefined> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM user_account WHERE username = $1`, [username]);
  const row = result.rows[0];
  const matches = await passwordMatches(row?.password_hash ?? null, password);
  return row && matches && !row.disabled ? toUser(row) : undefined;
}

export async function listUsers(db: Queryable): Promise<User[]> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM user_account ORDER BY id`);
  return result.rows.map(toUser);
}

/** Applies `changes` to the account; undefined when there is none with this id. Links are checked as at creation. */
export async function updateUser(db: Queryable, id: string, changes: UserChanges): Promise<User | undefined> {
  const current = await findUser(db, id);
  if (!current) return undefined;
  const patients = changes.patients === undefined ? current.patients : checkLinks(current.role, current.fhirUser, references(changes.patients, ['Patient'], 'patients'));
  const organization = changes.organization === undefined ? current.organization : changes.organization === null ? null : references([changes.organization], ['Organization'], 'organization')[0]!;
  const memberOf = changes.memberOf === undefined ? current.memberOf : references(changes.memberOf, ['PractitionerRole', 'CareTeam'], 'memberOf');
  const roles = changes.roles === undefined ? current.roles : [...new Set(changes.roles.map((code) => checkText(code, 'roles', ROLE_CODE, 'are codes of 1-64 letters, digits, ".", "_" or "-"')))];
  const displayName = changes.displayName === undefined ? current.displayName : checkText(changes.displayName, 'displayName', /^\S.{0,199}$/su, 'is 1-200 characters');
  const passwordHash = changes.password === undefined ? undefined : await hashPassword(changes.password);
  try {
    const result = await db.query<Row>(
      `UPDATE user_account SET patients = $2, organization = $3, member_of = $4, roles = $5, display_name = $6,
         external_subject = CASE WHEN $7 THEN $8 ELSE external_subject END,
         disabled = COALESCE($9, disabled), password_hash = COALESCE($10, password_hash), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, patients, organization, memberOf, roles, displayName, changes.externalSubject !== undefined, changes.externalSubject ?? null, changes.disabled ?? null, passwordHash ?? null],
    );
    return result.rows[0] ? toUser(result.rows[0]) : undefined;
  } catch (error) {
    conflict(error);
  }
}

/**
 * Of the references `refs` (`Practitioner/x`, `PractitionerRole/x`, `Organization/x`, `CareTeam/x`), those that name
 * someone the engine knows: an enabled account's own resource, organisation or membership, or a stored resource.
 * A consent permits or denies registered clinicians and organisations, not whatever id was typed.
 */
export async function knownActors(db: Queryable, refs: readonly string[]): Promise<Set<string>> {
  if (refs.length === 0) return new Set();
  const { rows } = await db.query<{ ref: string }>(
    `SELECT ref FROM unnest($1::text[]) AS ref
      WHERE EXISTS (SELECT 1 FROM user_account u WHERE NOT u.disabled AND (u.fhir_user = ref OR u.organization = ref OR ref = ANY(u.member_of)))
         OR EXISTS (SELECT 1 FROM fhir_current c WHERE c.resource_type = split_part(ref, '/', 1) AND c.id = split_part(ref, '/', 2) AND NOT c.deleted)`,
    [[...new Set(refs)]],
  );
  return new Set(rows.map((r) => r.ref));
}
