-- Drives and projects as Core last told the provider about them (drives.Store): what the drive rule
-- (drives.CanUse) decides on. Core does not push ACL changes, so drive rows are refreshed on a timer and
-- before every apply; refreshed_at says how old a row is.
CREATE TABLE tracked_drive (
    drive_id     text PRIMARY KEY,
    resource     jsonb NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tracked_project (
    project_id   text PRIMARY KEY,
    resource     jsonb NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
