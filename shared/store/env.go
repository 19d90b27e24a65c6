package store

// DatabaseEnv is where the IM's PostgreSQL database is, for every function that opens it.
type DatabaseEnv struct {
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true"`
}

// OptionalDatabaseEnv is the same variable for a function that serves without the database and refuses
// only what needs it (job-control: the shell sessions). It is declared here, beside DatabaseEnv, so the
// variable has one owner; envconfig's required is per field, hence two types.
type OptionalDatabaseEnv struct {
	DatabaseURL string `envconfig:"DATABASE_URL"`
}
