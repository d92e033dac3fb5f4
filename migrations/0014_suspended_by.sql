-- Who suspended a credential: the operator, or the subscriber with the emergency code. Only a
-- suspension of the subscriber's may be lifted by the subscriber (with the credential's PUK
-- and a new OTP device); the operator can lift either. NULL unless the credential is
-- suspended. Suspensions made before this column existed are read from their reason.
ALTER TABLE credentials ADD COLUMN suspended_by TEXT
    CHECK (suspended_by IN ('operator', 'subscriber'));
UPDATE credentials
   SET suspended_by = CASE WHEN status_reason = 'emergency suspension by the subscriber'
                           THEN 'subscriber' ELSE 'operator' END
 WHERE status = 'suspended';

-- A suspended credential the subscriber's 10th wrong PUK blocks for good keeps its
-- certificates on hold (it was stopped for a reason; only a revocation changes that now):
-- leaving 'suspended' lifts the hold only towards a working state.
CREATE OR REPLACE FUNCTION pki_credential_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'revoked' THEN
        UPDATE issued_certificates
           SET revoked_at = now(), reason = COALESCE(NEW.crl_reason, 0)
         WHERE credential_id = NEW.credential_id AND (revoked_at IS NULL OR reason = 6);
    ELSIF NEW.status = 'suspended' THEN
        UPDATE issued_certificates SET revoked_at = now(), reason = 6
         WHERE credential_id = NEW.credential_id AND revoked_at IS NULL;
    ELSIF OLD.status = 'suspended' AND NEW.status <> 'blocked' THEN
        UPDATE issued_certificates SET revoked_at = NULL, reason = NULL
         WHERE credential_id = NEW.credential_id AND reason = 6;
    END IF;
    RETURN NULL;
END $$;
