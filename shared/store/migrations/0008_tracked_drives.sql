-- Drives and projects as Core last told the provider about them (drives.Store): what the drive rule
-- (drives.CanUse) decides on. Core does not push ACL changes, so drive rows are refreshed on a timer and
-- before every apply; refreshed_at says how old a row is.
CREATE TABLE tracked_drive (
    drive_id     text PRIMARY KEY,
    resource     jsonb NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);

-- Projects (members, roles, groups) from Core's provider notification stream; modified_at is Core's time
-- of the change (ms), from which a reconnecting stream replays.
CREATE TABLE tracked_project (
    project_id   text PRIMARY KEY,
    resource     jsonb NOT NULL,
    modified_at  bigint NOT NULL DEFAULT 0,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
