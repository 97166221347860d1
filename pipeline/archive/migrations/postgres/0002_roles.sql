-- Roles. ttlc_app is what the stages and the API run as (`SET ROLE`, see PostgresConfig::app_role):
-- it may read and append events but never UPDATE or DELETE them. ttlc_maint is for retention,
-- pseudonymization and GDPR erasure, the only code allowed to change or remove stored events.
-- Both are NOLOGIN group roles: grant them to login roles (the migrating role gets both).
--
-- Roles are cluster-wide while migrations run per database (and tests migrate many databases at
-- once), so creation tolerates another session creating the same role concurrently.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ttlc_app') THEN
        BEGIN
            CREATE ROLE ttlc_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ttlc_maint') THEN
        BEGIN
            CREATE ROLE ttlc_maint NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    -- The migrating (owner) role must be able to `SET ROLE` to both.
    IF NOT pg_has_role(current_user, 'ttlc_app', 'MEMBER') THEN
        EXECUTE format('GRANT ttlc_app TO %I', current_user);
    END IF;
    IF NOT pg_has_role(current_user, 'ttlc_maint', 'MEMBER') THEN
        EXECUTE format('GRANT ttlc_maint TO %I', current_user);
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ttlc_app, ttlc_maint',
                   current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO ttlc_app, ttlc_maint;

REVOKE ALL ON events FROM PUBLIC;
GRANT SELECT, INSERT ON events TO ttlc_app;
GRANT SELECT, INSERT, UPDATE ON users, streams, sessions TO ttlc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON rules, user_notes TO ttlc_app;
GRANT SELECT, INSERT ON actions_log TO ttlc_app;
GRANT SELECT ON gdpr_erasures, schema_migrations TO ttlc_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ttlc_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ttlc_maint;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ttlc_maint;
-- Later migrations' tables are maintainable by default; what ttlc_app may do is granted per table.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ttlc_maint;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ttlc_maint;
