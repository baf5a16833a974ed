-- Failed sign-ins, shared by every node (issue 25). Keys are SHA-256 (hex) of
-- what is counted, never the typed ID or address itself:
--   per (typed ID, address or device): a growing delay after `delay_after`;
--   per address: a cap per window, sized for a hospital behind one NAT address.
-- `first_at` starts the count's window, `last_at` is the latest failure
-- (Unix seconds). No account is ever locked by these counts.
CREATE TABLE sign_in_throttle (
    key      TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at  BIGINT NOT NULL
);
CREATE INDEX sign_in_throttle_last ON sign_in_throttle (last_at);

-- Devices that signed in before: the device cookie's token as SHA-256, per
-- account. A right password from such a device is not refused by the
-- per-address cap (a stale mail client behind the same NAT cannot shut a
-- ward out).
CREATE TABLE sign_in_devices (
    token_hash   BLOB NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (token_hash, account_id)
);
CREATE INDEX sign_in_devices_account ON sign_in_devices (account_id);
