-- Allowed networks per facility (issue 25): CIDR ranges the facility's
-- accounts may sign in from (web, API, IMAP). No row: from anywhere.
CREATE TABLE facility_networks (
    facility TEXT NOT NULL REFERENCES facilities(code),
    cidr TEXT NOT NULL,
    PRIMARY KEY (facility, cidr)
);
