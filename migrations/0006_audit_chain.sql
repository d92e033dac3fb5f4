-- A tamper-evident audit log (issue 13). Every row carries `chain_hash`, an HMAC-SHA256 of the
-- row and of the previous row's `chain_hash`, under a key derived from a non-extractable key in
-- the HSM: whoever can write to this database but not use that HSM key cannot edit, delete or
-- insert a row without `sigillo audit verify` finding it.
--
-- Each audit writer (one per gateway process) keeps its own chain: `audit_chains` holds its
-- head, moved in the same statement as the rows it covers, so the writers of several nodes
-- never wait for each other.
CREATE TABLE audit_chains (
    chain_id    UUID PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    seq         BIGINT NOT NULL,                -- rows in the chain so far
    hash        BYTEA NOT NULL                  -- chain_hash of its last row (or of its start)
);

ALTER TABLE audit_log
    ADD COLUMN chain_id   UUID,
    ADD COLUMN chain_seq  BIGINT,
    ADD COLUMN chain_hash BYTEA;
CREATE INDEX audit_log_chain ON audit_log (chain_id, chain_seq);

-- Rows written before the chain existed: verify counts them but cannot prove them.
CREATE TABLE audit_chain_legacy (last_unchained_id BIGINT NOT NULL);
INSERT INTO audit_chain_legacy SELECT COALESCE(max(id), 0) FROM audit_log;

-- The gateway's runtime role: it may add audit rows, never change or remove them. The
-- gateway connects with a login that is a member of it (`database.url`), or sets it on every
-- runtime connection (`database.runtime_role`); migrations run as the owner.
DO $$
BEGIN
    CREATE ROLE sigillo_runtime NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL; -- created by an earlier schema, or by a migrator racing this one
    WHEN insufficient_privilege THEN
        -- An owner without CREATEROLE: a superuser creates the role beforehand
        -- (CREATE ROLE sigillo_runtime NOLOGIN; GRANT sigillo_runtime TO <owner>).
        RAISE WARNING 'cannot create role sigillo_runtime: create it, or set database.runtime_role = ""';
END $$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sigillo_runtime') THEN
        RETURN;
    END IF;
    BEGIN
        -- A non-superuser owner must be a member to SET ROLE to it.
        EXECUTE format('GRANT sigillo_runtime TO %I', session_user);
    EXCEPTION WHEN duplicate_object OR unique_violation OR invalid_grant_operation
                   OR insufficient_privilege THEN
        NULL;
    END;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sigillo_runtime', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO sigillo_runtime',
                   current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO sigillo_runtime',
                   current_schema());
    -- Tables of later migrations (created by the owner) get the same grants.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sigillo_runtime', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT USAGE, SELECT ON SEQUENCES TO sigillo_runtime', current_schema());
    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM sigillo_runtime';
    EXECUTE 'REVOKE DELETE, TRUNCATE ON audit_chains FROM sigillo_runtime';
    EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations, audit_chain_legacy '
            'FROM sigillo_runtime';
END $$;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_chains, audit_chain_legacy FROM PUBLIC;
