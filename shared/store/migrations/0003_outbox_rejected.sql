-- An update Core refused (4xx) on its own is kept with Core's reason instead of blocking every later update.
ALTER TABLE outbox ADD COLUMN rejected text;
