-- A registration intent: the row is claimed (state 'registering', intent set) before Core is asked to
-- register the application's job, so a crash between the two steps is finished by the next call.
ALTER TABLE iapp_config ADD COLUMN intent text;
ALTER TABLE iapp_config ADD CONSTRAINT iapp_config_state CHECK (state IN ('registering', 'active'));

-- Every change of a configuration is announced on channel iapp_config (payload: app, created_by and project
-- as a JSON array) when its transaction commits, so every instance drops its cached copy.
CREATE FUNCTION iapp_config_notify() RETURNS trigger AS $$
DECLARE
    r iapp_config;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    PERFORM pg_notify('iapp_config', json_build_array(r.app, r.created_by, r.project)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER iapp_config_notify AFTER INSERT OR UPDATE OR DELETE ON iapp_config
    FOR EACH ROW EXECUTE FUNCTION iapp_config_notify();
