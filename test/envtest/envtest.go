// Package envtest gives test packages the real local environment: a *rest.Config, a clientset and a
// DATABASE_URL. It reuses a running environment (make env-up, make test) when KUBECONFIG and DATABASE_URL
// point at one, and otherwise starts its own for the package and stops it afterwards.
//
//	var env *envtest.Env
//	func TestMain(m *testing.M) { envtest.Main(m, &env) }
package envtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ucloud-im/knative-im/test/env/localenv"
)

// Env is the environment a test package runs against.
type Env struct {
	Config      *rest.Config
	Clientset   kubernetes.Interface
	Dynamic     dynamic.Interface
	DatabaseURL string
	Kubeconfig  string
	// Started is the environment this package started itself; nil when it reuses a running one.
	Started *localenv.Env
}

// Main starts (or finds) the environment, stores it in *dst, runs the tests and exits with their code.
func Main(m *testing.M, dst **Env) { run(m, dst, false) }

// MainPostgres is Main for packages that need only PostgreSQL: run on their own, they start no cluster.
func MainPostgres(m *testing.M, dst **Env) { run(m, dst, true) }

func run(m *testing.M, dst **Env, postgresOnly bool) {
	env, err := setup(context.Background(), postgresOnly)
	if err != nil {
		fmt.Fprintln(os.Stderr, "envtest:", err)
		os.Exit(1)
	}
	*dst = env
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "envtest: stop:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Setup reuses KUBECONFIG/DATABASE_URL when set and starts whatever is missing.
func Setup(ctx context.Context) (*Env, error) { return setup(ctx, false) }

func setup(ctx context.Context, postgresOnly bool) (*Env, error) {
	e := &Env{Kubeconfig: os.Getenv("KUBECONFIG"), DatabaseURL: os.Getenv("DATABASE_URL")}
	needKube := e.Kubeconfig == "" && !postgresOnly
	if needKube || e.DatabaseURL == "" {
		project, err := localenv.ProjectDir()
		if err != nil {
			return nil, err
		}
		var bin string
		if needKube {
			if bin, err = localenv.BuildBinaries(ctx, project); err != nil {
				return nil, err
			}
		}
		dir, err := os.MkdirTemp("", "ucloud-im-envtest-")
		if err != nil {
			return nil, err
		}
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		started, err := localenv.Start(startCtx, localenv.Options{
			Dir: dir, BinDir: bin, ProjectDir: project,
			NoKube: !needKube, NoPostgres: e.DatabaseURL != "",
		})
		if err != nil {
			return nil, fmt.Errorf("start the local environment (logs in %s/logs): %w", dir, err)
		}
		e.Started = started
		if needKube {
			e.Kubeconfig = started.Kubeconfig
		}
		if e.DatabaseURL == "" {
			e.DatabaseURL = started.DatabaseURL
		}
	}
	if e.Kubeconfig == "" {
		return e, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", e.Kubeconfig, err)
	}
	if err := requireLoopback(cfg.Host); err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	e.Config = cfg
	if e.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if e.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// requireLoopback refuses a kubeconfig that points anywhere but this machine: tests create and delete
// namespaces, and a developer's KUBECONFIG may name a real cluster.
func requireLoopback(host string) error {
	u, err := url.Parse(host)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("KUBECONFIG points at %s, not at a local test apiserver; unset it to let the tests start their own", host)
	}
	return nil
}

// Close stops the environment if this package started it.
func (e *Env) Close() error {
	if e.Started == nil {
		return nil
	}
	err := e.Started.Stop()
	if err == nil {
		_ = os.RemoveAll(e.Started.Dir)
	}
	return err
}

// RandomName is a DNS-label-safe unique name with the given prefix.
func RandomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Namespace creates a fresh namespace for one test, waits until pods can be created in it (its 'default'
// ServiceAccount exists) and deletes it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name := RandomName("t")
	_, err := e.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	Eventually(t, 30*time.Second, func() error {
		_, err := e.Clientset.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return name
}

// Database creates an empty database for one test and returns its URL; it is dropped when the test ends.
func (e *Env) Database(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.DatabaseURL)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	name := "t_" + RandomName("db")[3:]
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), e.DatabaseURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		t.Fatalf("parse DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Eventually retries check until it returns nil, failing the test with the last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FilesystemClaim creates, in ns, the bound claim job pods mount users' files from (what an operator
// provides in a real cluster); its backing PersistentVolume is deleted when the test ends.
func (e *Env) FilesystemClaim(t testing.TB, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pv, err := localenv.PrepareJobsNamespace(ctx, e.Clientset, ns, name)
	if pv != "" {
		t.Cleanup(func() {
			_ = e.Clientset.CoreV1().PersistentVolumes().Delete(context.Background(), pv, metav1.DeleteOptions{})
		})
	}
	if err != nil {
		t.Fatalf("filesystem claim: %v", err)
	}
}

// FreePort is a loopback port nothing listens on at the moment of the call: for a server a test starts,
// or for a client that must find nobody there.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
