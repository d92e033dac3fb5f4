-- The signing history of a credential (GET /api/v1/credentials/{id}/history, the portal's
-- history page) reads its signHash rows that signed, newest first: this partial index serves
-- that page and the total without touching the other audit rows. One more index entry per
-- signHash request (not per signature: a batch is one row).
CREATE INDEX audit_log_signed ON audit_log (credential_id, id DESC)
    WHERE action = 'signatures.signHash' AND outcome = 'ok';
