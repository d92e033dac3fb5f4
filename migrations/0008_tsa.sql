-- The certificate of the RFC 3161 time-stamping unit, issued once by the issuing CA for the
-- TSA key in the HSM (labelled key_label). One row per TSA key.
CREATE TABLE tsa_certificates (
    key_label      TEXT PRIMARY KEY,
    cert_der       BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
