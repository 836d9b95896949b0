-- >>> sql/0005_default_privileges.sql
-- No database-wide default privileges: the migration role's functions keep PostgreSQL's built-in default (EXECUTE
-- for PUBLIC), so an extension it creates later (pgcrypto, pg_cron, ...) keeps the grants its script expects.
-- The project's own functions are not executable by PUBLIC because each file revokes it (`revoke all on function
-- ... from public`; pytest_tests/security/test_sweeps.py checks every one). A per-schema default could not do it:
-- ALTER DEFAULT PRIVILEGES IN SCHEMA only adds to the built-in default, it cannot revoke PUBLIC's EXECUTE; and the
-- database-wide `revoke execute on functions from public` of revision 0004 reached every schema, extensions too.
-- Granting the built-in default back removes the migration role's pg_default_acl entry (none is left behind).
alter default privileges grant execute on functions to public;
