/**
 * Mapping config deployments: which version of each named mapping config is active, and how each became so
 * (migration 0008_mapping_deployment).
 *
 * Contract:
 * - Exactly one row per name is active (a partial unique index). Every change runs in a transaction holding an
 *   advisory lock on the name, so processes deploying the same file at once, or a rollback racing a deployment,
 *   serialise: the second sees what the first wrote.
 * - `deployFileVersion` is idempotent: a version equal to the name's last 'file' deployment writes nothing, so
 *   restarting a process, or every process of a cluster loading the same file, deploys it once. That is also why a
 *   rollback holds: the file it overrides is still the last file version, and only a changed file deploys again.
 * - The content is recorded in mapping_config in the same transaction as the row that names it, so an active
 *   version always has stored content to map with.
 * - Rows are never deleted; a deployment or rollback only clears the previous row's `active`.
 * - An edit deployed from the console (reason 'console') holds like a rollback: it is not a file version.
 */
import { AnchorlineError } from '../errors/index.ts';
import { withTransaction, type Pool, type PoolClient, type Queryable } from './db.ts';
import { mappingConfigsByDigest, recordMappingConfig } from './mapping-configs.ts';

/** 'console': an edited version deployed from the web console's mapping tester (migration 0011). */
export type DeploymentReason = 'file' | 'rollback' | 'console';

export interface MappingDeployment {
  id: number;
  name: string;
  sha256: string;
  deployedAt: Date;
  reason: DeploymentReason;
  /** The file a 'file' deployment came from ('engine settings' for the built-in default), who deployed a 'console' edit; null for a rollback. */
  source: string | null;
  active: boolean;
}

export interface DeployOutcome {
  /** True when this call made `sha256` the active version. */
  deployed: boolean;
  /** The version active before the call (undefined for a name never deployed). */
  previousSha256: string | undefined;
  /** The version active after the call. */
  activeSha256: string;
}

async function lockName(client: PoolClient, name: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`anchorline-mapping-deployment:${name}`]);
}

async function activeRow(client: PoolClient, name: string): Promise<string | undefined> {
  const result = await client.query<{ sha256: string }>('SELECT sha256 FROM mapping_deployment WHERE name = $1 AND active', [name]);
  return result.rows[0]?.sha256;
}

async function activate(client: PoolClient, name: string, sha256: string, reason: DeploymentReason, source: string | null): Promise<void> {
  await client.query('UPDATE mapping_deployment SET active = false WHERE name = $1 AND active', [name]);
  await client.query('INSERT INTO mapping_deployment (name, sha256, reason, source, active) VALUES ($1, $2, $3, $4, true)', [name, sha256, reason, source]);
}

/**
 * Deploys the version of `content` for `name` as read from a file, unless it is the name's last file version:
 * records the content in mapping_config and makes it active.
 */
export async function deployFileVersion(pool: Pool, name: string, content: unknown, source: string): Promise<DeployOutcome> {
  return withTransaction(pool, async (client) => {
    await lockName(client, name);
    const sha256 = await recordMappingConfig(client, content);
    const lastFile = await client.query<{ sha256: string }>(`SELECT sha256 FROM mapping_deployment WHERE name = $1 AND reason = 'file' ORDER BY id DESC LIMIT 1`, [name]);
    const previousSha256 = await activeRow(client, name);
    if (lastFile.rows[0]?.sha256 === sha256 && previousSha256 !== undefined) return { deployed: false, previousSha256, activeSha256: previousSha256 };
    if (previousSha256 === sha256) {
      // The file now says what a rollback had already made active: recorded as the new file version, same content.
      await activate(client, name, sha256, 'file', source);
      return { deployed: false, previousSha256, activeSha256: sha256 };
    }
    await activate(client, name, sha256, 'file', source);
    return { deployed: true, previousSha256, activeSha256: sha256 };
  });
}

/**
 * Makes `sha256`, a version `name` had before, active again. `check` sees the stored content first and throws to
 * refuse it (content that does not re-hash, or no longer validates). Throws ANCHORLINE_ERR_NOT_FOUND when the name
 * was never deployed with that version.
 */
export async function rollbackTo(
  pool: Pool,
  name: string,
  sha256: string,
  check: (content: unknown) => void,
): Promise<{ previousSha256: string | undefined; sha256: string; changed: boolean }> {
  return withTransaction(pool, async (client) => {
    await lockName(client, name);
    const known = await client.query('SELECT 1 FROM mapping_deployment WHERE name = $1 AND sha256 = $2 LIMIT 1', [name, sha256]);
    if (known.rowCount === 0) {
      const named = await client.query('SELECT 1 FROM mapping_deployment WHERE name = $1 LIMIT 1', [name]);
      throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', named.rowCount === 0 ? `no mapping config named '${name}' was ever deployed` : `mapping config '${name}' never had version ${sha256}`);
    }
    const content = (await mappingConfigsByDigest(client, [sha256])).get(sha256);
    if (content === undefined) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `version ${sha256} is not stored in mapping_config`);
    check(content);
    const previousSha256 = await activeRow(client, name);
    if (previousSha256 === sha256) return { previousSha256, sha256, changed: false };
    await activate(client, name, sha256, 'rollback', null);
    return { previousSha256, sha256, changed: true };
  });
}

/**
 * Makes an edited version of `name` active: records `content` in mapping_config and activates it with reason
 * 'console'. `check` runs under the name's lock and throws to refuse (the name is unknown, the content clashes with
 * another config). The name's last file version is untouched, so loading that unchanged file again deploys nothing
 * and the edit stays active until the file itself changes.
 */
export async function deployEditedVersion(
  pool: Pool,
  name: string,
  content: unknown,
  source: string,
  check: (client: PoolClient) => Promise<void>,
): Promise<{ previousSha256: string | undefined; sha256: string; changed: boolean }> {
  return withTransaction(pool, async (client) => {
    await lockName(client, name);
    await check(client);
    const sha256 = await recordMappingConfig(client, content);
    const previousSha256 = await activeRow(client, name);
    if (previousSha256 === sha256) return { previousSha256, sha256, changed: false };
    await activate(client, name, sha256, 'console', source);
    return { previousSha256, sha256, changed: true };
  });
}

/** The active version of every name. Cheap: one index scan of a table with a row per deployment. */
export async function activeVersions(db: Queryable): Promise<Map<string, string>> {
  const result = await db.query<{ name: string; sha256: string }>('SELECT name, sha256 FROM mapping_deployment WHERE active');
  return new Map(result.rows.map((row) => [row.name, row.sha256]));
}

/** Every deployment, by name and then oldest first (or those of one name). */
export async function deploymentHistory(db: Queryable, name?: string): Promise<MappingDeployment[]> {
  const result = await db.query<{ id: number; name: string; sha256: string; deployed_at: Date; reason: DeploymentReason; source: string | null; active: boolean }>(
    `SELECT id, name, sha256, deployed_at, reason, source, active FROM mapping_deployment ${name === undefined ? '' : 'WHERE name = $1'} ORDER BY name, id`,
    name === undefined ? [] : [name],
  );
  return result.rows.map((row) => ({ id: row.id, name: row.name, sha256: row.sha256, deployedAt: row.deployed_at, reason: row.reason, source: row.source, active: row.active }));
}
