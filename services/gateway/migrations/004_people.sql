-- The people who sign in to the pages: their role, the unit or agency they act for, their
-- password as an argon2id hash; sessions by the digest of their token (the token itself
-- lives only in the person's cookie).
CREATE TABLE IF NOT EXISTS people (
    person_id     uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL,
    unit_id       text,
    agency        text,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL,
    disabled_at   timestamptz
);

CREATE TABLE IF NOT EXISTS sessions (
    digest     bytea PRIMARY KEY,
    person_id  uuid NOT NULL REFERENCES people (person_id),
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
