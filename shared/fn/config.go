package fn

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/ucloud-im/knative-im/shared/metrics"
)

// Config is what every function reads from its environment.
type Config struct {
	ListenEnv
	// METRICS_ADDR: the metrics listener, apart from PORT (see shared/metrics).
	metrics.Env
	// Metrics is the process's registry, made by Main before build when METRICS_ADDR is set (nil
	// otherwise: nothing recorded); not read from the environment.
	// build hands it to the parts that record (Core client, monitor, outbox, cache, sessions).
	Metrics         *metrics.Registry `ignored:"true"`
	ShutdownTimeout time.Duration     `envconfig:"SHUTDOWN_TIMEOUT" default:"25s"`
	// The server's timeouts, so a client that trickles its headers or body, reads its answer slowly or
	// holds idle connections open cannot tie up the function. ReadTimeout covers headers and body;
	// WriteTimeout runs from the end of the headers to the end of the answer, so it bounds a handler's
	// work too (above every Knative Service's timeoutSeconds, at most 60 s in knative/). A route that
	// streams declares it with LongLived, which lifts both for its requests.
	ReadHeaderTimeout time.Duration `envconfig:"READ_HEADER_TIMEOUT" default:"10s"`
	ReadTimeout       time.Duration `envconfig:"READ_TIMEOUT" default:"30s"`
	WriteTimeout      time.Duration `envconfig:"WRITE_TIMEOUT" default:"2m"`
	// IdleTimeout is above the 90 s Go clients (the queue-proxy among them) keep idle connections, so the
	// server is not the side that closes one just as a request is sent on it.
	IdleTimeout  time.Duration `envconfig:"IDLE_TIMEOUT" default:"2m"`
	MaxBodyBytes int64         `envconfig:"MAX_BODY_BYTES" default:"1048576"`
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
