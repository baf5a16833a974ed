-- The patient's consent behind an item that carries patient data: when, how and
-- by whom it was obtained. No patient data: the patient is identified only inside
-- the sealed envelope.
ALTER TABLE envelopes ADD COLUMN consent_obtained_on TEXT;
ALTER TABLE envelopes ADD COLUMN consent_method TEXT CHECK (consent_method IN ('written', 'verbal'));
ALTER TABLE envelopes ADD COLUMN consent_obtained_by TEXT;
