// Command localenv starts and stops the project's local environment (real kube-apiserver, etcd,
// controller manager, scheduler, KWOK, PostgreSQL).
//
//	localenv up [-dir .run/env] [-detach]   start; -detach returns and leaves it running (make env-up)
//	localenv down [-dir .run/env]           stop what 'up -detach' started, and only that
//	localenv status [-dir .run/env]         say what runs
//	localenv jobs-namespace [-dir .run/env] -ns NS   create the jobs namespace and its filesystem claim
//	localenv service-account [-dir .run/env] -ns NS -name NAME   create a ServiceAccount (and its namespace)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/test/env/localenv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "localenv:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: localenv up|down|status [-dir DIR] [-detach] [-no-kube] [-no-postgres]")
	}
	fset := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fset.String("dir", ".run/env", "folder for data, logs, kubeconfig and state")
	detach := fset.Bool("detach", false, "leave the environment running after this command returns")
	noKube := fset.Bool("no-kube", false, "start PostgreSQL only")
	noPG := fset.Bool("no-postgres", false, "start Kubernetes only")
	ns := fset.String("ns", "ucloud-jobs", "jobs namespace (jobs-namespace), the ServiceAccount's namespace (service-account)")
	name := fset.String("name", "", "ServiceAccount name (service-account)")
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		return up(abs, *detach, *noKube, *noPG)
	case "down":
		return down(abs)
	case "jobs-namespace":
		env, err := localenv.Load(abs)
		if err != nil {
			return err
		}
		cs, err := env.Clientset()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = localenv.PrepareJobsNamespace(ctx, cs, *ns, iapps.FilesystemVolume)
		return err
	case "service-account":
		env, err := localenv.Load(abs)
		if err != nil {
			return err
		}
		cs, err := env.Clientset()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return localenv.EnsureServiceAccount(ctx, cs, *ns, *name)
	case "status":
		env, err := localenv.Load(abs)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Println("not running")
			return nil
		} else if err != nil {
			return err
		}
		fmt.Printf("running: %v\n%s", env.Alive(), env.ShellExports())
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func up(dir string, detach, noKube, noPG bool) error {
	if env, err := localenv.Load(dir); err == nil {
		if alive := env.Alive(); len(alive) == len(env.Processes) && len(alive) > 0 {
			fmt.Fprintf(os.Stderr, "environment already running in %s\n", dir)
			return os.WriteFile(filepath.Join(dir, "env.sh"), []byte(env.ShellExports()), 0o644)
		}
		// A half-dead earlier run: stop its remains and start afresh.
		_ = env.Stop()
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	project, err := localenv.ProjectDir()
	if err != nil {
		return err
	}
	var bin string
	if !noKube {
		if bin, err = localenv.BuildBinaries(ctx, project); err != nil {
			return err
		}
	}
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelStart()
	env, err := localenv.Start(startCtx, localenv.Options{
		Dir: dir, BinDir: bin, ProjectDir: project, Detach: detach, NoKube: noKube, NoPostgres: noPG,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "[env] "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	exports := env.ShellExports()
	if err := os.WriteFile(filepath.Join(dir, "env.sh"), []byte(exports), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "[env] environment up in %d ms (logs in %s/logs)\n", env.StartupMS, dir)
	fmt.Print(exports)
	if detach {
		return nil
	}
	fmt.Fprintln(os.Stderr, "[env] Ctrl-C stops it")
	<-ctx.Done()
	return env.Stop()
}

func down(dir string) error {
	env, err := localenv.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "nothing to stop")
		return nil
	} else if err != nil {
		return err
	}
	if err := env.Stop(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "stopped %d processes\n", len(env.Processes))
	return nil
}
