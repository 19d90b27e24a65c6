package localenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubernetesVersion, EtcdVersion and KwokVersion must match test/env/build.sh.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.6.16"
	KwokVersion       = "v0.8.0"
)

// ExitCodeAnnotation on a Running pod makes KWOK end it with that exit code: "0" gives Succeeded, anything
// else Failed (see stages/pod-exit-on-annotation.yaml).
const ExitCodeAnnotation = "kwok.ucloud-im.test/exit-code"

// controllers are what the tests and the IM need of the controller manager: ServiceAccounts and their tokens,
// owner-reference garbage collection, namespace deletion, the node taints that gate scheduling, the
// workload controllers an operator's Deployments use, and volume binding (job pods mount the shared
// filesystem through a claim, and the scheduler waits for it to be bound).
var controllers = []string{
	"serviceaccount-controller", "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
	"garbage-collector-controller", "namespace-controller", "node-lifecycle-controller", "taint-eviction-controller",
	"endpointslice-controller", "deployment-controller", "replicaset-controller",
	"persistentvolume-binder-controller",
}

// startKube starts etcd, the apiserver, controller manager, scheduler and KWOK, installs the CRDs and the
// fake node, and returns once all of it answers.
func startKube(ctx context.Context, env *Env, o Options) error {
	if o.BinDir == "" || o.ProjectDir == "" {
		return fmt.Errorf("localenv: Options.BinDir and Options.ProjectDir are required for Kubernetes")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("%s is not built in %s (run test/env/build.sh): %w", b, o.BinDir, err)
		}
	}
	kdir := filepath.Join(env.Dir, "kube")
	logs := filepath.Join(env.Dir, "logs")
	if err := os.MkdirAll(filepath.Join(kdir, "certs"), 0o755); err != nil {
		return err
	}
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	// Resolve the module folders while etcd and the apiserver start: `go mod download` can take a while.
	var modDirs map[string]string
	var modErr error
	var modWG sync.WaitGroup
	modWG.Add(1)
	go func() {
		defer modWG.Done()
		modDirs, modErr = moduleDirs(ctx, o.ProjectDir)
	}()

	saKey, saPub, err := writeServiceAccountKeys(kdir)
	if err != nil {
		return err
	}
	token := randomHex(16)
	tokens := filepath.Join(kdir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return err
	}

	t := time.Now()
	etcd, err := launch("etcd", filepath.Join(o.BinDir, "etcd"), []string{
		"--data-dir", filepath.Join(kdir, "etcd"), "--name", "default",
		"--listen-client-urls", url(etcdPort), "--advertise-client-urls", url(etcdPort),
		"--listen-peer-urls", url(peerPort), "--initial-advertise-peer-urls", url(peerPort),
		"--initial-cluster", "default=" + url(peerPort), "--unsafe-no-fsync", "--log-level", "warn",
	}, logs, o.Detach, nil)
	if err != nil {
		return err
	}
	env.add(etcd)
	// The apiserver retries etcd until it answers, so both start at once.
	api, err := launch("kube-apiserver", filepath.Join(o.BinDir, "kube-apiserver"), []string{
		"--etcd-servers=" + url(etcdPort),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(apiPort), "--cert-dir=" + filepath.Join(kdir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC", "--token-auth-file=" + tokens, "--allow-privileged=true",
		// PodSecurity is on by default; named so that no later flag change drops it unnoticed: the jobs
		// namespace relies on it to refuse privileged pods, as a real cluster's apiserver does.
		"--enable-admission-plugins=PodSecurity",
		// exec, logs and port-forward: dial the node (KWOK's server) at its InternalIP, 127.0.0.1. No kubelet
		// CA is given, so KWOK's self-signed serving certificate is not verified; KWOK asks for no client
		// certificate. Loopback only.
		"--kubelet-preferred-address-types=InternalIP",
	}, logs, o.Detach, nil)
	if err != nil {
		return err
	}
	env.add(api)
	if err := etcd.waitFor(ctx, httpOK(url(etcdPort)+"/health", "")); err != nil {
		return err
	}
	o.Logf("etcd ready on 127.0.0.1:%d in %d ms", etcdPort, time.Since(t).Milliseconds())

	apiURL := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	env.Kubeconfig = filepath.Join(env.Dir, "kubeconfig")
	if err := writeKubeconfig(env.Kubeconfig, apiURL, token); err != nil {
		return err
	}

	if err := api.waitFor(ctx, httpOK(apiURL+"/readyz", token)); err != nil {
		return err
	}
	env.APIServer = apiURL
	o.Logf("kube-apiserver ready on %s in %d ms", apiURL, time.Since(t).Milliseconds())

	// The controller manager and scheduler start once the apiserver is ready: started earlier (to overlap
	// their start-up with the apiserver's), the controller manager exits on a loaded machine when it
	// cannot read the request-header CA configmap in time ("connection refused"), failing the run.
	kubeconfigFlags := []string{"--kubeconfig=" + env.Kubeconfig, "--authentication-kubeconfig=" + env.Kubeconfig,
		"--authorization-kubeconfig=" + env.Kubeconfig, "--bind-address=127.0.0.1", "--leader-elect=false"}
	kcm, err := launch("kube-controller-manager", filepath.Join(o.BinDir, "kube-controller-manager"), append([]string{
		"--secure-port=" + strconv.Itoa(kcmPort), "--service-account-private-key-file=" + saKey,
		"--root-ca-file=" + filepath.Join(kdir, "certs", "apiserver.crt"),
		"--use-service-account-credentials=true",
		// Only the controllers the project relies on: starting all forty takes several seconds of both cores.
		"--controllers=" + strings.Join(controllers, ","),
		// Fast garbage collection and namespace deletion keep the tests short.
		"--concurrent-gc-syncs=5", "--concurrent-namespace-syncs=5",
		// The node lifecycle controller lifts the not-ready taint from KWOK's node only on its next pass
		// (every 5 s by default); a 1 s period makes the cluster schedulable that much sooner.
		"--node-monitor-period=1s",
	}, kubeconfigFlags...), logs, o.Detach, nil)
	if err != nil {
		return err
	}
	env.add(kcm)
	sched, err := launch("kube-scheduler", filepath.Join(o.BinDir, "kube-scheduler"), append([]string{
		"--secure-port=" + strconv.Itoa(schedPort),
	}, kubeconfigFlags...), logs, o.Detach, nil)
	if err != nil {
		return err
	}
	env.add(sched)

	t = time.Now()

	modWG.Wait()
	if modErr != nil {
		return modErr
	}
	stages, err := writeStages(kdir, modDirs["sigs.k8s.io/kwok"])
	if err != nil {
		return err
	}
	debugConfig, err := writeDebugConfig(kdir)
	if err != nil {
		return err
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		return err
	}
	// KWOK watches its debugging CRDs from the start, so they are installed first.
	if err := installCRDs(ctx, cfg, modDirs); err != nil {
		return err
	}
	startKWOK := func() (*process, error) {
		return launch("kwok", filepath.Join(o.BinDir, "kwok"), append([]string{
			"--kubeconfig=" + env.Kubeconfig, "--manage-all-nodes=true",
			"--server-address=127.0.0.1:" + strconv.Itoa(kwokPort), "-c", stages,
		}, kwokDebugArgs(kwokPort, debugConfig)...), logs, o.Detach, nil)
	}
	kwok, err := startKWOK()
	if err != nil {
		return err
	}
	env.add(kwok)
	env.NodeName = "kwok-node-0"
	if err := createNode(ctx, cfg, env.NodeName); err != nil {
		return err
	}
	o.Logf("CRDs installed, node created after %d ms", time.Since(t).Milliseconds())
	if err := kcm.waitFor(ctx, httpOK(fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort), "")); err != nil {
		return err
	}
	if err := sched.waitFor(ctx, httpOK(fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), "")); err != nil {
		return err
	}
	o.Logf("controller-manager and scheduler healthy after %d ms", time.Since(t).Milliseconds())
	// KWOK v0.8.0 can crash as it starts ("fatal error: concurrent map writes" in its CEL environment, its
	// workers preparing their stages at once; seen once in CI, where it failed make run's start). It keeps no
	// state of its own, so a start that crashed is started again, twice at most; its log keeps the crash.
	for retries := 2; ; retries-- {
		err := kwok.waitFor(ctx, nodeSchedulable(cfg, env.NodeName))
		if err == nil {
			break
		}
		if kwok.alive() || retries == 0 {
			return err
		}
		o.Logf("kwok exited during start-up (see %s); starting it again", kwok.Log)
		again, err := startKWOK()
		if err != nil {
			return err
		}
		env.replace(kwok, again)
		kwok = again
	}
	o.Logf("node schedulable after %d ms", time.Since(t).Milliseconds())
	if err := kcm.waitFor(ctx, serviceAccountExists(cfg, "default", "default")); err != nil {
		return err
	}
	o.Logf("controller-manager, scheduler, KWOK node %s and CRDs ready in %d ms", env.NodeName, time.Since(t).Milliseconds())
	return nil
}

func url(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// httpOK checks that GET u answers 200. The servers' certificates are self-signed and local; the check
// only asks whether they answer.
func httpOK(u, bearer string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback readiness probe
	}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return nil
	}
}

func writeKubeconfig(path, server, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}
