-- 0002_queue_jobs: the PostgreSQL-backed work queue (workers/queue/postgres.ts), used when no Redis is configured.
--
-- One row per job that is waiting, delayed, running or failed. A completed job's row is deleted, so the table holds
-- only unfinished and failed work and a job_key can be enqueued again once its job completed. Jobs carry ids only
-- (`data` is `{"id": ...}`); handlers re-read everything else.
--
--   state 'waiting'  ready once run_at has passed (a future run_at: enqueued with a delay, or a retry backing off)
--   state 'active'   claimed by the consumer named in locked_by until locked_until (a lease the consumer renews while
--                    the handler runs); a lease that runs out makes the job claimable again (its worker died)
--   state 'failed'   failed permanently or out of attempts; kept for inspection, replaced if the job_key is enqueued again
--
-- `attempts` counts claims (runs started). A consumer's later update of a row checks (id, attempts, locked_by), so an
-- outcome from a run that lost its lease never touches the run that replaced it.
--
-- Tables are unqualified: the connection's search_path selects the schema.

CREATE TABLE queue_job (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue text NOT NULL,
  job_key text NOT NULL,
  data jsonb NOT NULL,
  state text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'active', 'failed')),
  run_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  locked_by text,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  failed_at timestamptz,
  -- When the row can next be claimed: its run time while waiting, its lease expiry while active. Claims read one
  -- ordered range of one index for both due jobs and expired leases instead of merging two.
  claimable_at timestamptz GENERATED ALWAYS AS (CASE WHEN state = 'active' THEN locked_until ELSE run_at END) STORED,
  CONSTRAINT queue_job_queue_key UNIQUE (queue, job_key),
  CONSTRAINT queue_job_lease CHECK ((state = 'active') = (locked_until IS NOT NULL))
)
-- Every job is inserted, updated at least once and deleted within seconds: vacuum early so that dead rows do not pile
-- up in front of the claim index between autovacuum runs at the default 20 % threshold.
WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

-- The claim scan: WHERE queue = $1 AND state <> 'failed' AND claimable_at <= now() ORDER BY claimable_at, id.
CREATE INDEX queue_job_claim ON queue_job (queue, claimable_at, id) WHERE state <> 'failed';

-- Inspecting and counting failed jobs without reading the live ones.
CREATE INDEX queue_job_failed ON queue_job (queue, failed_at) WHERE state = 'failed';
