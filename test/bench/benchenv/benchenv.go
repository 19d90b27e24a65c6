// Package benchenv is what the benchmark programs share: the local environment, a fake Core with its key
// files, and function processes started on free loopback ports.
//
// Each program starts an environment of its own, unless SharedEnvVar names the folder of one already
// running (make bench's short mode: one start instead of one per program); each program then gets a fresh
// database of its own in it and uses namespaces no other program uses.
package benchenv

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// SharedEnvVar names the environment variable holding the folder of a running local environment
// (localenv up -detach) for the programs to share.
const SharedEnvVar = "BENCH_ENV_DIR"

// Bench is a running benchmark environment.
type Bench struct {
	Env  *localenv.Env
	Core *fakecore.Core
	// Dir holds Core's public key and refresh token files (and the environment, unless shared).
	Dir string
	// DatabaseURL is the schema owner's URL of this program's database.
	DatabaseURL string

	shared       bool
	databaseURLs map[string]string
}

// Start brings up the environment (without PostgreSQL when noPostgres), or joins the shared one, and a
// fake Core. name names the program's database in a shared environment.
func Start(ctx context.Context, name string, noPostgres bool) (*Bench, error) {
	dir, err := os.MkdirTemp("", "ucloud-im-bench-")
	if err != nil {
		return nil, err
	}
	b := &Bench{Dir: dir}
	if err := os.Chmod(dir, 0o755); err != nil { // PostgreSQL's user must reach its data folder inside
		b.Close()
		return nil, err
	}
	if shared := os.Getenv(SharedEnvVar); shared != "" {
		b.shared = true
		if b.Env, err = localenv.Load(shared); err != nil {
			b.Close()
			return nil, fmt.Errorf("%s: %w", SharedEnvVar, err)
		}
	} else {
		project, err := localenv.ProjectDir()
		if err != nil {
			b.Close()
			return nil, err
		}
		kubeBin, err := localenv.BuildBinaries(ctx, project)
		if err != nil {
			b.Close()
			return nil, err
		}
		if b.Env, err = localenv.Start(ctx, localenv.Options{Dir: filepath.Join(dir, "env"), BinDir: kubeBin, ProjectDir: project, NoPostgres: noPostgres,
			// Durable, as production runs it: fsync off flatters every database-bound figure.
			DurablePostgres: true}); err != nil {
			b.Close()
			return nil, err
		}
	}
	b.DatabaseURL = b.Env.DatabaseURL
	if b.shared && !noPostgres {
		if b.DatabaseURL, err = freshDatabase(ctx, b.Env.DatabaseURL, "bench_"+name); err != nil {
			b.Close()
			return nil, err
		}
	}
	if b.Core, err = fakecore.New(fakecore.Options{}); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.Core.WriteFiles(dir); err != nil {
		b.Close()
		return nil, err
	}
	if !noPostgres {
		// The migrate step, as make run and a cluster run it: each function then connects as its own role.
		b.databaseURLs = map[string]string{}
		var logins []store.Login
		for _, r := range store.Roles {
			l := store.Login{Function: r.Function, User: r.DefaultLogin(), Password: "bench-" + strconv.Itoa(os.Getpid())}
			if b.databaseURLs[r.Function], err = store.LoginURL(b.DatabaseURL, l); err != nil {
				b.Close()
				return nil, err
			}
			logins = append(logins, l)
		}
		if err := store.Apply(ctx, b.DatabaseURL, logins); err != nil {
			b.Close()
			return nil, err
		}
		if err := printDurability(ctx, b.DatabaseURL); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// printDurability says how PostgreSQL commits, beside the figures it affects (a shared environment is the
// tests' own, without fsync).
func printDurability(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var fsync, syncCommit string
	if err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		return err
	}
	fmt.Printf("PostgreSQL: fsync=%s synchronous_commit=%s\n", fsync, syncCommit)
	return nil
}

// freshDatabase (re)creates database name beside the one adminURL names and answers its URL.
func freshDatabase(ctx context.Context, adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Namespace is the name for a namespace the program makes: base, with a random suffix in a shared
// environment, where an earlier run's namespace may still exist.
func (b *Bench) Namespace(base string) string {
	if !b.shared {
		return base
	}
	return fmt.Sprintf("%s-%x", base, rand.Uint32())
}

// DatabaseVar is function fn's DATABASE_URL setting: its own role's login.
func (b *Bench) DatabaseVar(fn string) string {
	return "DATABASE_URL=" + b.databaseURLs[fn]
}

// Vars are the functions' common settings for this environment (DatabaseVar adds a function's database).
func (b *Bench) Vars() []string {
	return []string{"KUBECONFIG=" + b.Env.Kubeconfig, "LOG_LEVEL=error",
		"UCLOUD_PROVIDER_ID=k8s", "UCLOUD_APPS_DOMAIN=apps.localhost", "UCLOUD_CORE_URL=" + b.Core.URL(),
		"UCLOUD_CORE_PUBLIC_KEY_FILE=" + filepath.Join(b.Dir, fakecore.PublicKeyFile),
		"UCLOUD_REFRESH_TOKEN_FILE=" + filepath.Join(b.Dir, fakecore.RefreshTokenFile)}
}

// Close stops everything and removes the folder.
func (b *Bench) Close() {
	if b.Core != nil {
		b.Core.Close()
	}
	if b.Env != nil && !b.shared {
		_ = b.Env.Stop()
	}
	_ = os.RemoveAll(b.Dir)
}

// Process is a function (or any server) started by Run.
type Process struct {
	URL    string
	PID    int
	cmd    *exec.Cmd
	exited chan struct{}
}

// Stop kills the process and waits for it.
func (p *Process) Stop() { _ = p.cmd.Process.Kill(); <-p.exited }

// Run starts path with the extra environment on a free loopback port and waits for its /healthz to answer
// 200. The port is free when picked but another process can take it before path binds it (this machine
// has one that opens loopback ports at random), so a start that fails is retried on another port.
func Run(path string, vars []string) (*Process, error) {
	return RunLogging(path, vars, os.Stderr)
}

// RunLogging is Run with the process's log (its stdout) written to log instead of stderr.
func RunLogging(path string, vars []string, log io.Writer) (*Process, error) {
	var err error
	for range 3 {
		var p *Process
		if p, err = runOnce(path, vars, log); err == nil {
			return p, nil
		}
	}
	return nil, err
}

func runOnce(path string, vars []string, log io.Writer) (*Process, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path)
	cmd.Env = append(append(os.Environ(), vars...), "PORT="+strconv.Itoa(port))
	// Functions log to stdout; at LOG_LEVEL=error that is why one would not start.
	cmd.Stdout, cmd.Stderr = log, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p := &Process{URL: fmt.Sprintf("http://127.0.0.1:%d", port), PID: cmd.Process.Pid, cmd: cmd, exited: exited}
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return nil, fmt.Errorf("%s exited while starting", path)
		default:
		}
		if resp, err := http.Get(p.URL + "/healthz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Ours answer {"status":"ok"}; anything else is another server on the port.
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"status"`) {
				return p, nil
			}
		}
	}
	p.Stop()
	return nil, fmt.Errorf("%s did not start", path)
}
