-- Functions the migration role creates later in this database are not executable by PUBLIC by default
-- (the built-in default grants EXECUTE to PUBLIC; a per-schema default cannot revoke it, only this one can).
alter default privileges revoke execute on functions from public;
