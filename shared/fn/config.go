package fn

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is what every function reads from its environment.
type Config struct {
	Port int `envconfig:"PORT" default:"8080"`
	// ListenHost defaults to loopback, which is where Knative's queue-proxy forwards requests inside the
	// pod; the manifests set it to 0.0.0.0 only where something else must reach the container directly.
	ListenHost      string        `envconfig:"LISTEN_HOST" default:"127.0.0.1"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"25s"`
	MaxBodyBytes    int64         `envconfig:"MAX_BODY_BYTES" default:"1048576"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info"`
}

// LoadEnv fills spec (a pointer to a struct with envconfig tags) from the environment. Its errors name the
// variable and say what is wrong with it.
func LoadEnv(spec any) error {
	err := envconfig.Process("", spec)
	if err == nil {
		return nil
	}
	var perr *envconfig.ParseError
	if errors.As(err, &perr) {
		return fmt.Errorf("configuration: %s=%q is not a valid %s: %w", perr.KeyName, perr.Value, perr.TypeName, perr.Err)
	}
	// envconfig says "required key X missing value" for a required variable that is unset.
	if key, ok := strings.CutPrefix(err.Error(), "required key "); ok {
		return fmt.Errorf("configuration: %s is required but not set", strings.TrimSuffix(key, " missing value"))
	}
	return fmt.Errorf("configuration: %w", err)
}
