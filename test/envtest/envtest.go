// Package envtest gives test packages the real local environment: a *rest.Config, a clientset and a
// DATABASE_URL. Nothing starts until a test asks for it: the first test of a package that needs the cluster
// (Cluster, Namespace, FilesystemClaim, the event helpers) or PostgreSQL (Postgres, Database) starts that
// part once for the package, and Main stops it after the last test. So the pure tests of a package run in
// seconds, with no control plane built. It reuses a running environment (make env-up, make test) when
// KUBECONFIG and DATABASE_URL point at one.
//
// Without KUBECONFIG and with the control plane not built yet (test/env/build.sh, ~20 minutes once), a test
// that needs the cluster is skipped with NeedsCluster as its reason; with UCLOUD_IM_REQUIRE_CLUSTER=1
// (make test) it fails instead.
//
//	var env *envtest.Env
//	func TestMain(m *testing.M) { envtest.Main(m, &env) }
package envtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
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

// NeedsCluster is the reason a test that needs the cluster is skipped when none can be had without
// building the control plane.
const NeedsCluster = "needs the local cluster: run `make test`, or `bash test/env/build.sh` once (~20 min) and run the tests again"

// NeedsPostgres is the reason a test that needs PostgreSQL is skipped when none is installed.
const NeedsPostgres = "needs PostgreSQL: run `make test`, or `bash test/env/deps.sh` once (installs Debian's postgresql) and run the tests again"

// RequireEnv, set to 1, turns those skips into failures: make test runs every test.
const RequireEnv = "UCLOUD_IM_REQUIRE_CLUSTER"

// Env is the environment a test package runs against. Its fields are set once their part has started:
// Config, Clientset, Dynamic and Kubeconfig after Cluster (or any method that needs the apiserver),
// DatabaseURL after Postgres or Database. Read them after one of those calls in the same test.
type Env struct {
	Config      *rest.Config
	Clientset   kubernetes.Interface
	Dynamic     dynamic.Interface
	DatabaseURL string
	Kubeconfig  string

	kube, postgres part
}

// part is one lazily started half of the environment.
type part struct {
	once sync.Once
	// skip is why a test needing this part is skipped; err is why it failed to start.
	skip    string
	err     error
	started *localenv.Env
}

// Main stores an environment that starts nothing yet in *dst, runs the tests, stops whatever they
// started, runs after (a package's own clean-up: it cannot defer, Main exits) and exits with their code.
func Main(m *testing.M, dst **Env, after ...func()) {
	env := &Env{}
	*dst = env
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "envtest: stop:", err)
		if code == 0 {
			code = 1
		}
	}
	for _, f := range after {
		f()
	}
	os.Exit(code)
}

// MainPostgres is Main; it remains for the packages that need only PostgreSQL (they never call Cluster).
func MainPostgres(m *testing.M, dst **Env) { Main(m, dst) }

// Cluster starts the apiserver for this package on its first call (or takes KUBECONFIG's) and returns e,
// with Config, Clientset, Dynamic and Kubeconfig set. It skips the test (fails it under make test) when
// there is no cluster to be had without building the control plane.
func (e *Env) Cluster(t testing.TB) *Env {
	t.Helper()
	e.kube.once.Do(func() { e.kube.skip, e.kube.err = e.startKube() })
	e.kube.need(t)
	return e
}

// Postgres starts PostgreSQL for this package on its first call (or takes DATABASE_URL) and returns e,
// with DatabaseURL set.
func (e *Env) Postgres(t testing.TB) *Env {
	t.Helper()
	e.postgres.once.Do(func() { e.postgres.skip, e.postgres.err = e.startPostgres() })
	e.postgres.need(t)
	return e
}

func (p *part) need(t testing.TB) {
	t.Helper()
	switch {
	case p.err != nil:
		t.Fatalf("envtest: %v", p.err)
	case p.skip != "" && os.Getenv(RequireEnv) == "1":
		t.Fatalf("%s=1 (make test), but this test %s", RequireEnv, p.skip)
	case p.skip != "":
		t.Skip(p.skip)
	}
}

func (e *Env) startKube() (skip string, err error) {
	ctx := context.Background()
	e.Kubeconfig = os.Getenv("KUBECONFIG")
	if e.Kubeconfig == "" {
		project, err := localenv.ProjectDir()
		if err != nil {
			return "", err
		}
		bin, err := localenv.CachedBinaries(ctx, project)
		if err != nil || bin == "" {
			return NeedsCluster, err
		}
		started, err := start(ctx, localenv.Options{BinDir: bin, ProjectDir: project, NoPostgres: true})
		if err != nil {
			return "", err
		}
		e.kube.started, e.Kubeconfig = started, started.Kubeconfig
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("load kubeconfig %s: %w", e.Kubeconfig, err)
	}
	if err := requireLoopback(cfg.Host); err != nil {
		return "", err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	e.Config, e.Clientset, e.Dynamic = cfg, cs, dyn
	return "", nil
}

func (e *Env) startPostgres() (skip string, err error) {
	if e.DatabaseURL = os.Getenv("DATABASE_URL"); e.DatabaseURL != "" {
		return "", nil
	}
	started, err := start(context.Background(), localenv.Options{NoKube: true})
	if errors.Is(err, localenv.ErrNoPostgres) {
		return NeedsPostgres, nil
	} else if err != nil {
		return "", err
	}
	e.postgres.started, e.DatabaseURL = started, started.DatabaseURL
	return "", nil
}

// start starts one part of the local environment in a folder of its own.
func start(ctx context.Context, o localenv.Options) (*localenv.Env, error) {
	dir, err := os.MkdirTemp("", "ucloud-im-envtest-")
	if err != nil {
		return nil, err
	}
	o.Dir = dir
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	started, err := localenv.Start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("start the local environment (logs in %s/logs): %w", dir, err)
	}
	return started, nil
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

// Close stops what this package started, if anything.
func (e *Env) Close() error {
	var errs []error
	for _, started := range []*localenv.Env{e.kube.started, e.postgres.started} {
		if started == nil {
			continue
		}
		if err := started.Stop(); err != nil {
			errs = append(errs, err)
		} else {
			_ = os.RemoveAll(started.Dir)
		}
	}
	return errors.Join(errs...)
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
	e.Cluster(t)
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
	e.Postgres(t)
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
	e.Cluster(t)
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
