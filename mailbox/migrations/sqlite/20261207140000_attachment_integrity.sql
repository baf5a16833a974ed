-- What is known of each attachment's sealed blob: `unknown` until a read
-- checked it whole, `verified` after one did, `damaged` once a read found it
-- not to match its signed manifest (sticky: never goes back). `integrity_at`
-- is when the state was set (Unix milliseconds).
ALTER TABLE attachments ADD COLUMN integrity TEXT NOT NULL DEFAULT 'unknown'
    CHECK (integrity IN ('unknown', 'verified', 'damaged'));
ALTER TABLE attachments ADD COLUMN integrity_at BIGINT;
