-- Expiry notices: one row per notice sent; the unique key makes sending idempotent across
-- nodes (only the node whose INSERT wins sends).
CREATE TABLE notices (
    credential_id  UUID NOT NULL REFERENCES credentials (credential_id),
    due_date       DATE NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    channel        TEXT NOT NULL,
    text           TEXT NOT NULL,
    sent_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (credential_id, due_date)
);
CREATE INDEX notices_user ON notices (user_id);
