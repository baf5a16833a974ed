-- IMAP UIDs: one row per (reader, folder, item), numbered from one ascending
-- counter. An item gets its UID the first time a client looks at the folder
-- after it arrived; an item that leaves a folder loses its row, and gets a new,
-- higher UID if it comes back, so UIDs only ever grow within a folder and stay
-- stable across restarts (UIDVALIDITY never changes).
CREATE TABLE imap_uids (
    uid         INTEGER PRIMARY KEY AUTOINCREMENT,
    principal   TEXT NOT NULL,
    folder      TEXT NOT NULL,
    envelope_id TEXT NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    UNIQUE (principal, folder, envelope_id)
);
CREATE INDEX imap_uids_by_folder ON imap_uids (principal, folder, uid);

-- A claim reads its batch back by lease.
CREATE INDEX delivery_queue_by_lease ON delivery_queue (lease_until);
