-- The subscriber's emergency code: only its HMAC (computed in the HSM with the PIN key, bound
-- to the user id), never the code. NULL for subscribers created before the code existed: an
-- emergency suspension of theirs is refused like a wrong code.
ALTER TABLE users ADD COLUMN emergency_code_hmac BYTEA;
