-- Open311 GeoReport v2 service requests: what the citizen's app sent besides the intake
-- (the service, the address and its id, the media URL, the contact fields the intake has
-- no place for), one row per intake it became, written in the intake's transaction. The
-- contact fields are kept for the command centre only: no Open311 answer shows them.
CREATE TABLE IF NOT EXISTS open311_requests (
    intake_id    uuid PRIMARY KEY REFERENCES intakes (intake_id),
    service_code text NOT NULL,
    description  text NOT NULL,
    address      text,
    address_id   text,
    lat          double precision,
    lon          double precision,
    media_url    text,
    email        text,
    device_id    text,
    account_id   text,
    requested_at timestamptz NOT NULL
);
-- GET requests: the newest first within a window of request times.
CREATE INDEX IF NOT EXISTS open311_requests_by_time ON open311_requests (requested_at, intake_id);
