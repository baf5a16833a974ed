-- Trusted time: each node's offset to the database server's clock (ms), as
-- seen at `seen_at` (database clock, Unix ms). Nodes compare theirs with the
-- others' recent rows every check; rows of nodes gone for a day are pruned.
CREATE TABLE node_clocks (
    node TEXT PRIMARY KEY,
    offset_ms BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
