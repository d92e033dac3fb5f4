-- E-mail: each subscriber's language, and the durable outbox every node sends from.

-- The language of the messages sent to a subscriber (templates/mail/<locale>/).
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'it' CHECK (locale IN ('it', 'en'));

-- One row per message, written in the transaction of the change it reports (or right after
-- it). A node claims due rows (FOR UPDATE SKIP LOCKED) by moving next_attempt_at past its
-- lease and writing a fresh claim token; only the holder of that token may mark the row sent
-- or failed, so a node whose lease ran out cannot overwrite the claim of the node that took
-- the message over.
CREATE TABLE mail_outbox (
    mail_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       UUID NOT NULL UNIQUE,         -- the Message-ID's left part: a retry is recognisably the same mail
    kind             TEXT NOT NULL,                -- template name, e.g. expiry_notice
    user_id          TEXT REFERENCES users (user_id),
    recipient        TEXT NOT NULL,
    locale           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,   -- claims so far (a crashed send counts)
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    claim_token      UUID,
    claimed_by       TEXT,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_user ON mail_outbox (user_id);

-- Attachments (the sealed envelope's PDF), removed once their message is sent or failed.
CREATE TABLE mail_attachments (
    mail_id       BIGINT NOT NULL REFERENCES mail_outbox (mail_id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    content       BYTEA NOT NULL,
    PRIMARY KEY (mail_id, position)
);
