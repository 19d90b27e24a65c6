// Command migrate is the IM's one-shot database step, run before the functions of a release start (the
// Job ucloud-im-migrate in a cluster, test/run-local.sh locally). As the schema's owner (DATABASE_URL) it
// applies the pending migrations, creates every function's group role with exactly its grants, and creates
// (or sets the password of) each function's login role from the URL that function connects with: the file
// DATABASE_LOGINS_DIR/<function> (a Secret mounted there in a cluster) holds that function's DATABASE_URL.
// Functions never migrate; they only check the schema's version.
//
// With -generate, a missing DATABASE_LOGINS_DIR/<function> is first written with the default login name
// and a random password on the owner URL's server and database (make run, never a cluster).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ucloud-im/knative-im/shared/store"
)

func main() {
	generate := flag.Bool("generate", false, "write a login URL with a random password for every function that has none in DATABASE_LOGINS_DIR (local use)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "migrate")
	if err := run(log, os.Getenv("DATABASE_URL"), os.Getenv("DATABASE_LOGINS_DIR"), *generate, store.Role.DefaultLogin, *timeout); err != nil {
		log.Error("migrate failed", "err", err.Error())
		os.Exit(1)
	}
}

// run is the command; loginName names a generated login.
func run(log *slog.Logger, ownerURL, dir string, generate bool, loginName func(store.Role) string, timeout time.Duration) error {
	if ownerURL == "" {
		return errors.New("configuration: DATABASE_URL (the schema owner's) is required but not set")
	}
	if dir == "" {
		return errors.New("configuration: DATABASE_LOGINS_DIR (one file per function holding its DATABASE_URL) is required but not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var logins []store.Login
	for _, r := range store.Roles {
		path := filepath.Join(dir, r.Function)
		raw, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && generate {
			if raw, err = writeLocal(ownerURL, path, r.Function, loginName(r)); err == nil {
				log.Info("wrote a local login", "for", r.Function, "file", path)
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s has no login: %s is missing (it holds that function's DATABASE_URL)", r.Function, path)
		} else if err != nil {
			return err
		}
		l, err := store.LoginFromURL(r.Function, strings.TrimSpace(string(raw)))
		if err != nil {
			return err
		}
		logins = append(logins, l)
	}
	began := time.Now()
	if err := store.Apply(ctx, ownerURL, logins); err != nil {
		return err
	}
	log.Info("schema migrated and roles applied", "migrations", store.MigrationCount(), "roles", len(store.Roles), "duration_ms", time.Since(began).Milliseconds())
	return nil
}

func writeLocal(ownerURL, path, fn, user string) ([]byte, error) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	u, err := store.LoginURL(ownerURL, store.Login{Function: fn, User: user, Password: hex.EncodeToString(b)})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return []byte(u), os.WriteFile(path, []byte(u+"\n"), 0o600)
}
