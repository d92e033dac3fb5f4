-- Certificate status for relying parties (issue 14): every certificate the CA issued, by
-- serial, with its revocation; a status version that every gateway node polls; the CRL that
-- one node signs and all serve.
--
-- Invariant: the status of a certificate changes in the SAME transaction as its credential's
-- status (triggers below), so OCSP and the CRL can never say "good" for a credential that
-- PostgreSQL has revoked or suspended once a node has caught up with the version.
-- Invariant: `pki_status.version` is bumped by every change of `issued_certificates`, under
-- that row's lock, so versions become visible in commit order: a node that has loaded every
-- row with `status_version <= v` has seen every change up to `v`.

-- The CRLReason (RFC 5280) an operator gave for a revocation; certificateHold (6) is implied
-- by a suspension and never stored here.
ALTER TABLE credentials ADD COLUMN crl_reason SMALLINT
    CHECK (crl_reason IN (0, 1, 3, 4, 5, 9));

-- The OCSP responder's certificate (and later ones) live beside the CA certificates.
ALTER TABLE ca_certificates DROP CONSTRAINT IF EXISTS ca_certificates_name_check;
ALTER TABLE ca_certificates ADD CONSTRAINT ca_certificates_name_check
    CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$');

CREATE TABLE pki_status (
    id                  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    version             BIGINT NOT NULL,    -- any change: issuance or status
    revocation_version  BIGINT NOT NULL     -- status changes only (what a CRL lists)
);
INSERT INTO pki_status (version, revocation_version) VALUES (1, 1);

CREATE TABLE issued_certificates (
    serial_number   TEXT PRIMARY KEY,       -- upper-case hex, as credentials.serial_number
    issuer          TEXT NOT NULL,          -- ca_certificates.name of the issuing CA
    credential_id   UUID REFERENCES credentials (credential_id),
    not_after       TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,            -- NULL: good
    reason          SMALLINT,               -- CRLReason; 6 = certificateHold (suspension)
    status_version  BIGINT NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((revoked_at IS NULL) = (reason IS NULL))
);
CREATE INDEX issued_certificates_credential ON issued_certificates (credential_id);
CREATE INDEX issued_certificates_version ON issued_certificates (status_version);

-- Backfill: the current and the replaced certificates of every credential, with the time of
-- the revocation or suspension from the audit log where it is known.
INSERT INTO issued_certificates (serial_number, issuer, credential_id, not_after, status_version)
    SELECT serial_number, 'issuing', credential_id, valid_to, 1 FROM credentials
    UNION ALL
    SELECT serial_number, 'issuing', credential_id, valid_to, 1 FROM certificate_history
    ON CONFLICT (serial_number) DO NOTHING;
UPDATE issued_certificates i
    SET revoked_at = COALESCE(
            (SELECT max(a.at) FROM audit_log a
              WHERE a.credential_id = c.credential_id AND a.outcome = 'ok'
                AND a.action = CASE c.status WHEN 'revoked' THEN 'credential.revoke'
                                             ELSE 'credential.suspend' END),
            now()),
        reason = CASE c.status WHEN 'revoked' THEN 0 ELSE 6 END
    FROM credentials c
    WHERE c.credential_id = i.credential_id AND c.status IN ('revoked', 'suspended');

CREATE TABLE crls (
    issuer              TEXT PRIMARY KEY,
    crl_number          BIGINT NOT NULL,
    revocation_version  BIGINT NOT NULL,    -- pki_status.revocation_version it lists
    this_update         TIMESTAMPTZ NOT NULL,
    next_update         TIMESTAMPTZ NOT NULL,
    der                 BYTEA NOT NULL
);

-- Every change of a certificate's row takes the next version.
CREATE FUNCTION pki_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pki_status
       SET version = version + 1,
           revocation_version = revocation_version + CASE TG_OP WHEN 'UPDATE' THEN 1 ELSE 0 END
     RETURNING version INTO NEW.status_version;
    RETURN NEW;
END $$;
CREATE TRIGGER issued_certificates_version BEFORE INSERT OR UPDATE ON issued_certificates
    FOR EACH ROW EXECUTE FUNCTION pki_bump_version();

-- A credential's new certificate (creation, renewal) is recorded as issued.
CREATE FUNCTION pki_record_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO issued_certificates (serial_number, issuer, credential_id, not_after, status_version)
        VALUES (NEW.serial_number, 'issuing', NEW.credential_id, NEW.valid_to, 0)
        ON CONFLICT (serial_number) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER credentials_issued AFTER INSERT OR UPDATE OF serial_number ON credentials
    FOR EACH ROW EXECUTE FUNCTION pki_record_issued();

-- Revocation, suspension (certificateHold) and resumption (hold removed) of a credential
-- apply to every certificate it has had.
CREATE FUNCTION pki_credential_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'revoked' THEN
        UPDATE issued_certificates
           SET revoked_at = now(), reason = COALESCE(NEW.crl_reason, 0)
         WHERE credential_id = NEW.credential_id AND (revoked_at IS NULL OR reason = 6);
    ELSIF NEW.status = 'suspended' THEN
        UPDATE issued_certificates SET revoked_at = now(), reason = 6
         WHERE credential_id = NEW.credential_id AND revoked_at IS NULL;
    ELSIF OLD.status = 'suspended' THEN
        UPDATE issued_certificates SET revoked_at = NULL, reason = NULL
         WHERE credential_id = NEW.credential_id AND reason = 6;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER credentials_status AFTER UPDATE OF status ON credentials
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION pki_credential_status();
