-- The webmail's folder pages: one page of a folder is one range of this index
-- (newest first), and the unread count reads only unread, unarchived entries.
CREATE INDEX mailbox_entries_listing ON mailbox_entries (principal, folder, archived, delivered_at);
CREATE INDEX mailbox_entries_unread ON mailbox_entries (principal, folder) WHERE seen = FALSE AND archived = FALSE;
