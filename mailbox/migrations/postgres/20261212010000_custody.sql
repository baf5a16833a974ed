-- A facility's third key: the custodian.
ALTER TABLE facility_keys DROP CONSTRAINT facility_keys_role_check;
ALTER TABLE facility_keys ADD CONSTRAINT facility_keys_role_check
    CHECK (role IN ('liaison', 'oversight', 'custodian'));

-- Keys that survive people (issue 24). Each person's decryption half (never
-- the signing half), sealed to their facility's custodian key: one row per
-- key the person has had, named by its key slot ID.
CREATE TABLE custody_keys (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    key_id TEXT NOT NULL,
    facility_code TEXT NOT NULL,
    custodian_fingerprint TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, key_id)
);

-- A password reset that replaced a person's key waits here for a liaison of
-- the same facility to approve restoring the earlier keys.
CREATE TABLE key_restorations (
    account_id TEXT NOT NULL PRIMARY KEY REFERENCES accounts(id),
    facility_code TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT
);

-- Earlier decryption halves given back to the person, each sealed to the
-- person's key at approval; opened into the keyring at sign-in.
CREATE TABLE previous_keys (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    key_id TEXT NOT NULL,
    sealed_to TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, key_id)
);
