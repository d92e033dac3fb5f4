-- Subscribers, their credentials, the gateway's CA, and the audit log.

CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,               -- Argon2id PHC string
    given_name     TEXT NOT NULL,
    surname        TEXT NOT NULL,
    fiscal_code    TEXT NOT NULL,
    email          TEXT NOT NULL,
    phone          TEXT NOT NULL,
    otp_method     TEXT NOT NULL CHECK (otp_method IN ('sms', 'totp')),
    totp_secret    BYTEA,                       -- sealed (AES-256-GCM), never in clear
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (otp_method <> 'totp' OR totp_secret IS NOT NULL)
);

CREATE TABLE credentials (
    credential_id  UUID PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    key_algo       TEXT NOT NULL CHECK (key_algo IN ('ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072')),
    purpose        TEXT NOT NULL CHECK (purpose IN ('signing', 'authentication')),
    status         TEXT NOT NULL CHECK (status IN
                     ('inactive', 'active', 'pin_blocked', 'blocked', 'suspended', 'revoked')),
    pin_hmac       BYTEA,                       -- HMAC computed inside the HSM; NULL until activation
    puk_hmac       BYTEA NOT NULL,
    pin_failures   INTEGER NOT NULL DEFAULT 0,
    puk_failures   INTEGER NOT NULL DEFAULT 0,
    serial_number  TEXT NOT NULL UNIQUE,        -- hex, of the current certificate
    subject_dn     TEXT NOT NULL,
    valid_from     TIMESTAMPTZ NOT NULL,
    valid_to       TIMESTAMPTZ NOT NULL,
    cert_chain     BYTEA[] NOT NULL,            -- DER, leaf first, then issuing CA, then root
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at   TIMESTAMPTZ
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE ca_certificates (
    name           TEXT PRIMARY KEY CHECK (name IN ('root', 'issuing')),
    key_label      TEXT NOT NULL,
    cert_der       BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor          TEXT NOT NULL,               -- user id, or 'admin'
    action         TEXT NOT NULL,
    credential_id  UUID,
    outcome        TEXT NOT NULL,
    detail         JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_credential ON audit_log (credential_id);
