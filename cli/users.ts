/**
 * `anchorline user` and `anchorline app`: the accounts of people who sign in and the SMART apps they sign in
 * through, from the command line against the engine's database (the same rules as /admin/users and /admin/apps).
 * A password is read from the environment variable ANCHORLINE_USER_PASSWORD or from standard input, never from the
 * command line (which other users of the machine can see); an app's secret is printed once, on stdout.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type AnchorlineConfig } from '../config/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
import { openToolDatabase, signInApps, users } from '../store/index.ts';

export const USERS_USAGE = `usage: anchorline user|app <command> [options]

commands:
  user add --username <name> --role <role> --fhir-user <ref> --name <display name>
           [--patient Patient/<id>]... [--organization Organization/<id>] [--member-of <ref>]...
           [--role-code <code>]... [--external-subject <sub>] [--no-password]
                         create an account; the password comes from ANCHORLINE_USER_PASSWORD or standard input
  user list              every account (never passwords)
  user disable <id>      disable an account (its tokens stop working)
  app add --name <name> --redirect-uri <url>... [--confidential]
                         register a SMART app; a confidential app's secret is printed once
  app list               registered apps

Roles: patient (fhirUser Patient/x), representative (RelatedPerson/x), practitioner and registration (Practitioner/x).

options:
  --config <file>   JSON config file (also ANCHORLINE_CONFIG): which database and data dir
  --help            show this help
`;

export interface UsersOutput {
  out(text: string): void;
  err(text: string): void;
  /** The password for `user add`, when not in the environment. */
  readPassword(): Promise<string>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const processOutput: UsersOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readPassword: readStdin,
};

class UsageError extends Error {}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`${what} is required`);
  return value;
}

/** Runs `user` or `app` (`noun`) with the arguments after it; returns the exit code (0 done, 1 not found, 2 usage). */
export async function runUsers(noun: 'user' | 'app', argv: string[], output: UsersOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  let config: AnchorlineConfig;
  const parse = (args: string[]) =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        username: { type: 'string' },
        role: { type: 'string' },
        'fhir-user': { type: 'string' },
        name: { type: 'string' },
        patient: { type: 'string', multiple: true },
        organization: { type: 'string' },
        'member-of': { type: 'string', multiple: true },
        'role-code': { type: 'string', multiple: true },
        'external-subject': { type: 'string' },
        'no-password': { type: 'boolean' },
        'redirect-uri': { type: 'string', multiple: true },
        confidential: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  try {
    ({ values, positionals } = parse(argv));
    if (values.help || positionals.length === 0) {
      output.out(USERS_USAGE);
      return values.help ? 0 : 2;
    }
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), env });
  } catch (error) {
    output.err(`anchorline ${noun}: ${(error as Error).message}\n${error instanceof ConfigError ? '' : `\n${USERS_USAGE}`}`);
    return 2;
  }

  const [action, target] = positionals;
  try {
    const database = await openToolDatabase(config, `anchorline-${noun}`);
    try {
      const pool = database.pool;
      switch (`${noun} ${action}`) {
        case 'user add': {
          const password = values['no-password'] ? undefined : (env.ANCHORLINE_USER_PASSWORD ?? (await output.readPassword()));
          const user = await users.createUser(pool, {
            username: required(values.username, '--username'),
            role: required(values.role, '--role') as users.UserRole,
            fhirUser: required(values['fhir-user'], '--fhir-user'),
            displayName: required(values.name, '--name'),
            ...(password !== undefined ? { password } : {}),
            ...(values.patient ? { patients: values.patient } : {}),
            ...(values.organization ? { organization: values.organization } : {}),
            ...(values['member-of'] ? { memberOf: values['member-of'] } : {}),
            ...(values['role-code'] ? { roles: values['role-code'] } : {}),
            ...(values['external-subject'] ? { externalSubject: values['external-subject'] } : {}),
          });
          output.err(`account ${user.id} "${user.username}": ${user.role}, ${user.fhirUser}\n`);
          output.out(`${user.id}\n`);
          return 0;
        }
        case 'user list':
          for (const user of await users.listUsers(pool)) {
            output.out(`${user.id}\t${user.username}\t${user.role}\t${user.fhirUser}\t${user.patients.join(',') || '-'}\t${user.disabled ? 'disabled' : 'active'}\n`);
          }
          return 0;
        case 'user disable': {
          const updated = await users.updateUser(pool, required(target, 'the account id'), { disabled: true });
          if (!updated) {
            output.err(`anchorline user: no account ${target}\n`);
            return 1;
          }
          output.err(`disabled account ${updated.id}\n`);
          return 0;
        }
        case 'app add': {
          const secret = await signInApps.loadSignInSecret(config.auth.signIn.secretFile ?? path.join(config.dataDir, 'sign-in-secret'));
          const created = await signInApps.createApp(pool, secret, { name: required(values.name, '--name'), redirectUris: signInApps.checkRedirectUris(values['redirect-uri'] ?? []), confidential: values.confidential === true });
          output.err(`SMART app "${created.app.name}" (${created.app.confidential ? 'confidential' : 'public, PKCE'}): ${created.app.redirectUris.join(' ')}\n`);
          output.out(`client_id=${created.app.clientId}\n${created.secret ? `client_secret=${created.secret}\n` : ''}`);
          return 0;
        }
        case 'app list':
          for (const app of await signInApps.listApps(pool)) {
            output.out(`${app.clientId}\t${app.name}\t${app.confidential ? 'confidential' : 'public'}\t${app.redirectUris.join(' ')}\t${app.disabled ? 'disabled' : 'active'}\n`);
          }
          return 0;
        default:
          throw new UsageError(`unknown command ${noun} ${positionals.join(' ')}`);
      }
    } finally {
      await database.close();
    }
  } catch (error) {
    if (error instanceof UsageError || isAnchorlineError(error)) {
      const message = isAnchorlineError(error) ? (error.detail ?? error.code) : error.message;
      output.err(`anchorline ${noun}: ${message}\n\n${USERS_USAGE}`);
      return 2;
    }
    output.err(`anchorline ${noun}: ${(error as Error).message}\n`);
    return 2;
  }
}
