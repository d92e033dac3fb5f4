-- Renewal: single-use coupons (payment happens elsewhere; a coupon proves it), stored hashed,
-- and the certificates a credential had before.
CREATE TABLE coupons (
    coupon_hash    BYTEA PRIMARY KEY,           -- SHA-256 of the coupon text
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    redeemed_at    TIMESTAMPTZ,
    credential_id  UUID
);

CREATE TABLE certificate_history (
    credential_id  UUID NOT NULL REFERENCES credentials (credential_id),
    serial_number  TEXT NOT NULL,
    valid_from     TIMESTAMPTZ NOT NULL,
    valid_to       TIMESTAMPTZ NOT NULL,
    cert_chain     BYTEA[] NOT NULL,
    replaced_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (credential_id, serial_number)
);
