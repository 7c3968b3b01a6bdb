-- 0011_mapping_deployment_console: a third way a mapping config version becomes active. Staff edit a config in the
-- web console's mapping tester and deploy it (POST /admin/mappings/deploy): the edited version is recorded with
-- reason 'console' (source names who deployed it). Like a rollback it is not a file version, so a process that
-- loads the unchanged file again (a restart, a touched file) leaves it active; only a changed file deploys again.

ALTER TABLE mapping_deployment DROP CONSTRAINT mapping_deployment_reason_check;
ALTER TABLE mapping_deployment ADD CONSTRAINT mapping_deployment_reason_check CHECK (reason IN ('file', 'rollback', 'console'));
