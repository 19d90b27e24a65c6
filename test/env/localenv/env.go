// Package localenv starts the project's real local test environment: etcd, kube-apiserver (RBAC on),
// kube-controller-manager, kube-scheduler, KWOK with one fake node, the Knative CRDs, and a throwaway
// PostgreSQL, all on 127.0.0.1 and free ports. It stops exactly the processes it started.
package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options say where the environment lives and which parts to start.
type Options struct {
	// Dir holds data, certificates, logs, the kubeconfig and state.json. Required.
	Dir string
	// BinDir holds the control-plane binaries built by test/env/build.sh. Required unless NoKube.
	BinDir string
	// ProjectDir is the project's module root, where the pinned Knative modules are resolved. Required unless NoKube.
	ProjectDir string
	// Detach lets the servers outlive this process (make env-up); otherwise they die with it.
	Detach bool
	// NoKube and NoPostgres skip a part.
	NoKube, NoPostgres bool
	// DurablePostgres keeps PostgreSQL's fsync, synchronous_commit and full_page_writes on, as production
	// runs it (the benchmarks); tests turn them off for speed.
	DurablePostgres bool
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Env is a running environment. Its JSON form is state.json, which Load reads back to stop it later.
type Env struct {
	Dir         string     `json:"dir"`
	Kubeconfig  string     `json:"kubeconfig,omitempty"`
	DatabaseURL string     `json:"databaseURL,omitempty"`
	APIServer   string     `json:"apiServer,omitempty"`
	NodeName    string     `json:"nodeName,omitempty"`
	StartupMS   int64      `json:"startupMs"`
	Processes   []*process `json:"processes"`
	// Scratch folders outside Dir, removed by Stop.
	Scratch []string `json:"scratch,omitempty"`

	mu sync.Mutex
}

// StateFile is where a detached environment records itself.
func StateFile(dir string) string { return filepath.Join(dir, "state.json") }

// Start brings the environment up and returns when every part answers. On error everything already started
// is stopped again.
func Start(ctx context.Context, o Options) (env *Env, err error) {
	began := time.Now()
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Dir == "" {
		return nil, errors.New("localenv: Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	// PostgreSQL runs as the 'postgres' user when we are root and must be able to reach its data folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	env = &Env{Dir: dir}
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()

	var wg sync.WaitGroup
	var pgErr error
	if !o.NoPostgres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			ports, err := freePorts(1)
			if err != nil {
				pgErr = err
				return
			}
			p, url, scratch, err := startPostgres(ctx, filepath.Join(dir, "postgres"), filepath.Join(dir, "logs"), ports[0], "ucloud_im", o.Detach, o.DurablePostgres)
			if scratch != "" {
				env.mu.Lock()
				env.Scratch = append(env.Scratch, scratch)
				env.mu.Unlock()
			}
			if err != nil {
				pgErr = fmt.Errorf("postgres: %w", err)
				return
			}
			env.add(p)
			env.DatabaseURL = url
			o.Logf("postgres ready on 127.0.0.1:%d in %d ms", ports[0], time.Since(t).Milliseconds())
		}()
	}
	var kubeErr error
	if !o.NoKube {
		kubeErr = startKube(ctx, env, o)
	}
	wg.Wait()
	if err := errors.Join(kubeErr, pgErr); err != nil {
		return env, err
	}
	env.StartupMS = time.Since(began).Milliseconds()
	if err := env.save(); err != nil {
		return env, err
	}
	return env, nil
}

func (e *Env) add(p *process) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Processes = append(e.Processes, p)
}

// replace puts p where old was (a process started again).
func (e *Env) replace(old, p *process) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, q := range e.Processes {
		if q == old {
			e.Processes[i] = p
			return
		}
	}
	e.Processes = append(e.Processes, p)
}

func (e *Env) save() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	raw, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(StateFile(e.Dir), raw, 0o644)
}

// Load reads the state of an environment started earlier (possibly by another process).
func Load(dir string) (*Env, error) {
	raw, err := os.ReadFile(StateFile(dir))
	if err != nil {
		return nil, err
	}
	var e Env
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("parse %s: %w", StateFile(dir), err)
	}
	return &e, nil
}

// Stop stops the processes in reverse start order and waits for each. It is safe to call twice.
func (e *Env) Stop() error {
	e.mu.Lock()
	procs := append([]*process(nil), e.Processes...)
	e.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		for _, dir := range e.Scratch {
			_ = os.RemoveAll(dir)
		}
	}
	_ = os.Remove(StateFile(e.Dir))
	return errors.Join(errs...)
}

// Alive lists the processes that still run.
func (e *Env) Alive() []string {
	var names []string
	for _, p := range e.Processes {
		if p.alive() {
			names = append(names, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
		}
	}
	return names
}

// RESTConfig is the admin configuration of the environment's apiserver.
func (e *Env) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
}

// Clientset is an admin clientset for the environment's apiserver.
func (e *Env) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := e.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
