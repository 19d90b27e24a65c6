package fn

// ListenEnv is where a process serves and how much it logs: every function (through Config) and the
// local gateway.
type ListenEnv struct {
	Port int `envconfig:"PORT" default:"8080"`
	// ListenHost defaults to loopback, which is where Knative's queue-proxy forwards requests inside the
	// pod; the manifests set it to 0.0.0.0 only where something else must reach the container directly.
	ListenHost string `envconfig:"LISTEN_HOST" default:"127.0.0.1"`
	LogLevel   string `envconfig:"LOG_LEVEL" default:"info"`
}

// ProviderEnv is the provider id Core knows this IM by; it appears in every provider path and product.
type ProviderEnv struct {
	ProviderID string `envconfig:"UCLOUD_PROVIDER_ID" required:"true"`
}
