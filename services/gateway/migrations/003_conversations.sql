-- The citizen channels' side of an intake: where to answer it (a conversation: the channel
-- and the citizen's address on it, written in the intake's own transaction), the replies
-- queued for it (sent by the gateway's reply sender, retried with backoff, given up after
-- a number of attempts and kept), and the agencies' notices of each incident (an answer,
-- a closure), kept so an intake that joins its incident after the notice still hears it.
CREATE TABLE IF NOT EXISTS conversations (
    intake_id  uuid PRIMARY KEY REFERENCES intakes (intake_id),
    channel    text NOT NULL,
    address    text NOT NULL,
    reference  text NOT NULL,
    started_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_reference ON conversations (reference);

CREATE TABLE IF NOT EXISTS replies (
    reply_id   uuid PRIMARY KEY,
    seq        bigint GENERATED ALWAYS AS IDENTITY,  -- a conversation's replies go in this order
    intake_id  uuid NOT NULL REFERENCES conversations (intake_id),
    kind       text NOT NULL,
    body       text NOT NULL,
    -- The same words as a WhatsApp template's parameters (an agency's notice may come
    -- after the 24 hours in which WhatsApp takes a free-form text).
    params     text[],
    queued_at  timestamptz NOT NULL,
    due_at     timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    sent_at    timestamptz,
    failed_at  timestamptz
);
CREATE INDEX IF NOT EXISTS replies_due ON replies (due_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS replies_by_intake ON replies (intake_id);

CREATE TABLE IF NOT EXISTS notices (
    notice_id   uuid PRIMARY KEY,
    incident_id uuid NOT NULL,
    kind        text NOT NULL,
    agency      text NOT NULL,
    text        text NOT NULL,
    noticed_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_incident ON notices (incident_id);
