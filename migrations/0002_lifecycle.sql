-- Credential lifecycle: suspension remembers the state to resume to; every operator change
-- records its reason; renewal (issue 5) marks the credential once renewed.
ALTER TABLE credentials
    ADD COLUMN suspended_from TEXT CHECK (suspended_from IN ('inactive', 'active', 'pin_blocked')),
    ADD COLUMN status_reason  TEXT,
    ADD COLUMN renewed_at     TIMESTAMPTZ;
