-- Configurations are stored as the text the application's validation produced (json keeps it as written;
-- jsonb reordered keys, so a user read back {"label":..,"deviceId":..} after writing the other order).
ALTER TABLE iapp_config ALTER COLUMN config TYPE json USING config::json;
