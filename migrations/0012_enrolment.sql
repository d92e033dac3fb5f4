-- Enrolment without the operator seeing a secret: the subscriber sets the password and the
-- envelope passphrase through a single-use e-mailed link; the PUK exists only from when its
-- sealed envelope is made.

-- No password until the subscriber chooses one (rows from before keep theirs).
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
-- True once the subscriber chose the password themselves (setup, change, recovery); false for
-- one set by the machine operator and for rows from before: the portal asks for a change.
ALTER TABLE users ADD COLUMN password_by_subscriber BOOLEAN NOT NULL DEFAULT false;
-- An authenticator-app user has no TOTP secret until they enrol the app (first sign-in).
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_check;
-- What seals the subscriber's envelopes, made at setup from the passphrase (never stored):
-- the passphrase-dependent PDF encryption entries (JSON, public in every envelope) and the
-- file key, sealed in the HSM. Both NULL until setup; set together.
ALTER TABLE users ADD COLUMN envelope_lock JSONB;
ALTER TABLE users ADD COLUMN envelope_key BYTEA;
ALTER TABLE users ADD CONSTRAINT users_envelope_whole
    CHECK ((envelope_lock IS NULL) = (envelope_key IS NULL));

-- NULL until the credential's envelope is made (at creation if setup is done, else at setup).
ALTER TABLE credentials ALTER COLUMN puk_hmac DROP NOT NULL;
CREATE INDEX credentials_awaiting_envelope ON credentials (user_id) WHERE puk_hmac IS NULL;

-- Setup links: only the SHA-256 of the token is kept. A link works once, until expires_at;
-- a new link for the user (or the setup itself) deletes the earlier ones.
CREATE TABLE setup_links (
    token_sha256  BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX setup_links_user ON setup_links (user_id);
