-- Sole control that survives a Redis rollback: every SAD is recorded here when it is issued,
-- and the audit commit that precedes every signHash response spends it. Redis stays the fast
-- first check; this table is the authority (issue 12, items 3 and 5).
--
-- `generation` counts the suspensions and revocations of a credential: a SAD remembers the
-- generation it was issued under and never signs once it changed, even after a resumption.
ALTER TABLE credentials ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE sads (
    sad_id         UUID PRIMARY KEY,            -- the SAD's stable id (not the SAD itself)
    user_id        TEXT NOT NULL,
    credential_id  UUID NOT NULL REFERENCES credentials (credential_id),
    authorised     INTEGER NOT NULL CHECK (authorised > 0),
    used           INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= authorised),
    generation     BIGINT NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,        -- the absolute deadline; no extension passes it
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sads_expires ON sads (expires_at);
