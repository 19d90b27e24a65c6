package localenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres says Debian's PostgreSQL server binaries are not installed (test/env/deps.sh installs them).
var ErrNoPostgres = errors.New("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install the Debian package 'postgresql': bash test/env/deps.sh)")

// postgresBinDir finds the newest Debian PostgreSQL installation, or $PG_BIN_DIR when set.
func postgresBinDir() (string, error) {
	if dir := os.Getenv("PG_BIN_DIR"); dir != "" {
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", ErrNoPostgres
	}
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi > vj
	})
	return filepath.Dir(matches[0]), nil
}

// postgresCredential is the identity PostgreSQL runs as: it refuses to run as root, so as root we switch to
// the 'postgres' system user the Debian package creates.
func postgresCredential() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, os.Getuid(), os.Getgid(), nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root needs the 'postgres' user to own the database: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

// startPostgres initialises a throwaway cluster in dir and starts it on 127.0.0.1:port with trust
// authentication (loopback only), then creates database dbName. It returns the process and the URL. As root
// the data lives in a fresh folder under the system temp dir instead, because the server runs as the
// 'postgres' user and dir's parents (a CI clone in a private temp folder, say) may be closed to it; that
// folder is returned as scratch, to be removed after the server stops.
func startPostgres(ctx context.Context, dir, logDir string, port int, dbName string, detach, durable bool) (p *process, url, scratch string, err error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, "", "", err
	}
	cred, uid, gid, err := postgresCredential()
	if err != nil {
		return nil, "", "", err
	}
	if cred != nil {
		if scratch, err = os.MkdirTemp("", "ucloud-im-pg-"); err != nil {
			return nil, "", "", err
		}
		if err := os.Chmod(scratch, 0o755); err != nil {
			return nil, "", scratch, err
		}
		dir = scratch
	}
	data := filepath.Join(dir, "pgdata")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, "", scratch, err
	}
	if err := os.Chown(data, uid, gid); err != nil {
		return nil, "", scratch, fmt.Errorf("chown PostgreSQL data dir: %w", err)
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir // a working directory the postgres user can enter
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, "", scratch, fmt.Errorf("initdb: %w: %s", err, out)
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "shared_buffers=64MB"}
	if !durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	p, err = launch("postgres", filepath.Join(bin, "postgres"), args, logDir, detach, cred)
	if err != nil {
		return nil, "", scratch, err
	}
	p.StopSignal = syscall.SIGINT
	adminURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	err = p.waitFor(ctx, func(ctx context.Context) error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize())
		return err
	})
	if err != nil {
		_ = p.stop(5 * time.Second)
		return nil, "", scratch, err
	}
	return p, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, dbName), scratch, nil
}
