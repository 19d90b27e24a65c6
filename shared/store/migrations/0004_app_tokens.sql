-- The one-time tokens of interactive sessions that have been exchanged for a cookie: a token works once.
-- Rows outlive the token's own expiry by an hour and are then removed by the next exchange.
CREATE TABLE app_token_used (
    nonce      text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX app_token_used_expires ON app_token_used (expires_at);
