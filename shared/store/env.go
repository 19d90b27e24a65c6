package store

// DatabaseEnv is where the IM's PostgreSQL database is, for every function that opens it.
type DatabaseEnv struct {
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true"`
}
