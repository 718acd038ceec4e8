-- What triage decided for each incident it opened, so that a call-taker's review can be
-- checked against it and its event carries the whole decision after the review.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS agency text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS channel text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS text text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS place jsonb;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS reviewed_at timestamptz;
