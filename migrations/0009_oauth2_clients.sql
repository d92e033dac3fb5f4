-- OAuth2 clients of the CSC v2 authorization server, registered by the operator.
-- A confidential client has a secret, stored only as its SHA-256 (the secret is 256 random
-- bits, so a digest cannot be brute-forced); a public client has none and must use PKCE,
-- which every client must anyway. Redirect URIs are matched exactly.
CREATE TABLE oauth2_clients (
    client_id TEXT PRIMARY KEY,
    secret_sha256 BYTEA,
    redirect_uris TEXT[] NOT NULL,
    scopes TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
