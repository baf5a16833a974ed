-- The webmail's folder pages: one page of a folder is one range of this index,
-- newest first with the item ID as tie-break (so the ORDER BY needs no sort),
-- and the Inbox's unread count is a range of the second (covering) index.
CREATE INDEX mailbox_entries_listing ON mailbox_entries (principal, folder, archived, delivered_at, envelope_id);
CREATE INDEX mailbox_entries_unread ON mailbox_entries (principal, folder, archived, seen);
