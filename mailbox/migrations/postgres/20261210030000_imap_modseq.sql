-- CONDSTORE and QRESYNC (RFC 7162). Each folder row carries the mod-sequence
-- of its last change and the flag state it was given for (`seen` + 2 ×
-- `flagged`; -1 until the folder is next looked at, so rows numbered before
-- this migration get one then). `imap_modseq` holds each folder's highest
-- mod-sequence (its row also serialises the folder's numbering);
-- `imap_vanished` remembers the UIDs that left a folder and at which
-- mod-sequence, for VANISHED (EARLIER).
ALTER TABLE imap_uids ADD COLUMN modseq BIGINT NOT NULL DEFAULT 1;
ALTER TABLE imap_uids ADD COLUMN flag_state INTEGER NOT NULL DEFAULT -1;

CREATE TABLE imap_modseq (
    principal TEXT NOT NULL,
    folder    TEXT NOT NULL,
    highest   BIGINT NOT NULL,
    PRIMARY KEY (principal, folder)
);

CREATE TABLE imap_vanished (
    principal TEXT NOT NULL,
    folder    TEXT NOT NULL,
    uid       BIGINT NOT NULL,
    modseq    BIGINT NOT NULL,
    PRIMARY KEY (principal, folder, uid)
);
CREATE INDEX imap_vanished_by_modseq ON imap_vanished (principal, folder, modseq);
