-- Integrated-application configuration per (application, owner). project is '' for a personal workspace so
-- that the unique key also holds there (NULLs would never collide).
CREATE TABLE iapp_config (
    app         text        NOT NULL,
    created_by  text        NOT NULL,
    project     text        NOT NULL DEFAULT '',
    config      jsonb       NOT NULL,
    etag        text        NOT NULL,
    job_id      text,
    state       text        NOT NULL DEFAULT 'active',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, created_by, project)
);

-- What the monitor last reported per job, so a restarted monitor neither repeats nor misses a state.
CREATE TABLE job_state (
    job_id      text        PRIMARY KEY,
    last_state  text        NOT NULL,
    last_seq    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Job updates waiting for delivery to Core, deduplicated by event id and by (job, sequence).
CREATE TABLE outbox (
    id            bigserial   PRIMARY KEY,
    event_id      text        NOT NULL UNIQUE,
    job_id        text        NOT NULL,
    seq           bigint      NOT NULL,
    update        jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    UNIQUE (job_id, seq)
);
CREATE INDEX outbox_pending ON outbox (job_id, seq) WHERE delivered_at IS NULL;
