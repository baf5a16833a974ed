-- The public list of participating facilities (参加医療施設一覧): the city
-- (市区町村) is always listed with the name and departments; the note (hours,
-- referral desk, equipment) is shown with address and phone only when the
-- facility chose to publish its details (`publish_details`).
ALTER TABLE facilities ADD COLUMN city TEXT NOT NULL DEFAULT '';
ALTER TABLE facilities ADD COLUMN public_note TEXT NOT NULL DEFAULT '';
