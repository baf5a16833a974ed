-- Who gave the consent: the patient, or a guardian (a minor's parent, a
-- guardian under the Civil Code) with their relation to the patient. Rows
-- from before record neither.
ALTER TABLE envelopes ADD COLUMN consent_given_by TEXT;
ALTER TABLE envelopes ADD COLUMN consent_relation TEXT;
