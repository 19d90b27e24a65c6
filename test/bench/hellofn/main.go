// Command hellofn is the smallest function on the project's host (shared/fn): what every function pays
// at start-up before its own dependencies. Used by make bench.
package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/fn"
)

func main() {
	fn.Main("hellofn", func(ctx context.Context, cfg fn.Config, log *slog.Logger) (*fn.Server, error) {
		routes := http.NewServeMux()
		routes.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello\n")) })
		return &fn.Server{Routes: routes}, nil
	})
}
