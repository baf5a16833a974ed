-- The channel an audit entry came through (web, api, imap, cli, system) and
-- the channel each session was opened through. Older entries keep NULL, which
-- their hash never covered, so the chain still verifies.
ALTER TABLE audit_log ADD COLUMN channel TEXT;
ALTER TABLE sessions ADD COLUMN channel TEXT;
