package deploy_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/netpol"
)

// shipped is what an operator applies, read from the rendered kustomization: its NetworkPolicies, its
// Knative Services and PostgreSQL's pod labels.
type shipped struct {
	objs      []*unstructured.Unstructured
	policies  []networkingv1.NetworkPolicy
	functions map[string]*servingv1.Service
	postgres  map[string]string
	migrate   map[string]string // the migrate Job's pod labels
	config    map[string]string
}

func readShipped(t *testing.T) shipped {
	t.Helper()
	s := shipped{objs: render(t), functions: map[string]*servingv1.Service{}}
	for _, u := range s.objs {
		switch u.GetKind() {
		case "NetworkPolicy":
			var p networkingv1.NetworkPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &p, true); err != nil {
				t.Fatalf("NetworkPolicy %s: %v", u.GetName(), err)
			}
			s.policies = append(s.policies, p)
		case "Service":
			if u.GroupVersionKind().Group != "serving.knative.dev" {
				continue
			}
			var ks servingv1.Service
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ks); err != nil {
				t.Fatal(err)
			}
			s.functions[ks.Name] = &ks
		case "Job":
			if u.GetName() == "ucloud-im-migrate" {
				s.migrate, _, _ = unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
			}
		case "StatefulSet":
			if u.GetName() == "ucloud-im-postgres" {
				s.postgres, _, _ = unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
			}
		case "ConfigMap":
			if u.GetName() == "ucloud-im" {
				s.config, _, _ = unstructured.NestedStringMap(u.Object, "data")
			}
		}
	}
	if len(s.functions) == 0 || s.postgres == nil || s.config == nil || s.migrate == nil {
		t.Fatal("the kustomization lacks the Knative Services, PostgreSQL, the migrate Job or the ConfigMap")
	}
	return s
}

// setEnvOf sets, for this test, the environment the manifest gives function fn from the ConfigMap: the
// settings reach the code the way they do in a cluster.
func (s shipped) setEnvOf(t *testing.T, fn string) {
	t.Helper()
	ks := s.functions[fn]
	if ks == nil {
		t.Fatalf("no Knative Service %s", fn)
	}
	for _, e := range ks.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Name != "ucloud-im" {
			continue
		}
		v, ok := s.config[e.ValueFrom.ConfigMapKeyRef.Key]
		if !ok {
			t.Fatalf("%s reads key %s, which the ConfigMap ucloud-im does not have", fn, e.ValueFrom.ConfigMapKeyRef.Key)
		}
		t.Setenv(e.Name, v)
	}
}

func usesDatabase(ks *servingv1.Service) bool {
	return slices.ContainsFunc(ks.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "DATABASE_URL" })
}

// built are the job objects the functions make, with the settings the manifests give them.
type built struct {
	web, other          jobs.Objects // a 2-rank job with a web interface, and another user's job
	batch               jobs.Objects // a GPU batch job, no web port
	syncthing, terminal iapps.Objects
}

// testJob is a job running the application fixture app (test/apps).
func testJob(id, product, category, app string, replicas int) ucloud.Job {
	job := ucloud.Job{ID: id, Owner: ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		Specification: ucloud.JobSpecification{
			Product:  ucloud.ProductReference{ID: product, Category: category, Provider: "k8s"},
			Replicas: replicas,
		}}
	apps.Load(app).Apply(&job)
	return job
}

// buildJobs builds the jobs with ids from base on (5101, 5102, ... for base 5100).
func buildJobs(t *testing.T, s shipped, ns string, base int) built {
	t.Helper()
	s.setEnvOf(t, "job-create")
	var jenv jobs.Env
	t.Setenv("UCLOUD_PROVIDER_ID", "k8s")
	t.Setenv("UCLOUD_APPS_DOMAIN", "apps.example.org")
	if err := fn.LoadEnv(&jenv); err != nil {
		t.Fatalf("job-create's settings from the manifests: %v", err)
	}
	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	one := func(job ucloud.Job) jobs.Objects {
		p, _ := catalog.Product(job.Specification.Product)
		app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: ns, Isolation: jenv.Env})
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	var b built
	id := func(n int) string { return fmt.Sprint(base + n) }
	b.web = one(testJob(id(1), "u1-standard-1", "u1-standard", "jupyter", 2))
	b.other = one(testJob(id(2), "u1-standard-1", "u1-standard", "jupyter", 1))
	b.batch = one(testJob(id(3), "u1-gpu-1", "u1-gpu", "batch", 1))

	// The monitor recreates the applications' pods, so its settings are the ones that matter over time;
	// config-update's are checked to be the same below.
	s.setEnvOf(t, "monitor")
	var henv iapps.AppEnv
	if err := fn.LoadEnv(&henv); err != nil {
		t.Fatalf("the monitor's settings from the manifests: %v", err)
	}
	reg := iapps.BuiltinApps(henv)
	app := func(name, id, cfg string) iapps.Objects {
		h, ok := reg.Lookup(name)
		if !ok {
			t.Fatalf("no handler %s", name)
		}
		raw, err := h.Validate(json.RawMessage(cfg))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := h.MakeObjects(iapps.Job{ID: id, Key: iapps.Key{App: name, CreatedBy: "bob#1"}, ETag: "e1", Namespace: ns}, raw)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	b.syncthing = app("syncthing", id(4), `{"devices":[{"deviceId":"MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD","label":"laptop"}],"folders":[{"ucloudPath":"/1/Sync"}]}`)
	b.terminal = app("terminal", id(5), `{"folders":["/1/Home"]}`)
	return b
}

func (b built) policies() []networkingv1.NetworkPolicy {
	return []networkingv1.NetworkPolicy{*b.web.Policy, *b.other.Policy, *b.batch.Policy, *b.syncthing.Policy, *b.terminal.Policy}
}

func (b built) pods() []*corev1.Pod {
	return slices.Concat(b.web.Pods, b.other.Pods, b.batch.Pods, []*corev1.Pod{b.syncthing.Pod, b.terminal.Pod})
}

// TestEveryPodBuildingFunctionGetsTheSameSettings: job-create, the configuration functions and the monitor
// all build job pods; a setting one of them lacked would give its pods a policy with the defaults.
func TestEveryPodBuildingFunctionGetsTheSameSettings(t *testing.T) {
	s := readShipped(t)
	want := settingsOf(s.functions["job-create"])
	if len(want) < 7 {
		t.Fatalf("job-create gets %d isolation settings from the ConfigMap, want 7: %v", len(want), want)
	}
	for _, f := range []string{"config-update", "config-reset", "config-restart", "monitor"} {
		if got := settingsOf(s.functions[f]); !slices.Equal(got, want) {
			t.Errorf("%s gets %v, job-create %v", f, got, want)
		}
	}
}

func settingsOf(ks *servingv1.Service) []string {
	var out []string
	for _, e := range ks.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "CLUSTER_") || strings.HasPrefix(e.Name, "APP_PROXY_") || e.Name == "METADATA_CIDRS" {
			out = append(out, e.Name+"<-"+e.ValueFrom.ConfigMapKeyRef.Key)
		}
	}
	return out
}

// endpoint makes a pod endpoint with the labels the real object has.
func endpoint(name, ns string, labels map[string]string, ip string) netpol.Endpoint {
	return netpol.Endpoint{Name: name, Namespace: ns, Labels: labels, IP: netip.MustParseAddr(ip)}
}

func out(name, ip string) netpol.Endpoint {
	return netpol.Endpoint{Name: name, IP: netip.MustParseAddr(ip)}
}

// functionPod is a Knative revision pod of a function: the labels Knative puts on it plus the template's.
func functionPod(ks *servingv1.Service, ip string) netpol.Endpoint {
	l := map[string]string{"serving.knative.dev/service": ks.Name, "serving.knative.dev/configuration": ks.Name,
		"serving.knative.dev/revision": ks.Name + "-00001", "app": ks.Name + "-00001"}
	for k, v := range ks.Spec.Template.Labels {
		l[k] = v
	}
	return endpoint(ks.Name, ks.Namespace, l, ip)
}

// TestNetworkPolicyTable decides, with the NetworkPolicy evaluator, every connection that matters between
// jobs, the IM, Knative and the outside, over the policies the project really ships (deploy/, rendered)
// and builds (job-create's and the applications' code, with the settings from deploy/config.yaml). The
// addresses are a cluster whose pods are in 10.244.0.0/16 and services in 10.96.0.0/12: inside the
// shipped default ranges.
func TestNetworkPolicyTable(t *testing.T) {
	s := readShipped(t)
	b := buildJobs(t, s, "ucloud-jobs", 5100)
	cluster := &netpol.Cluster{Policies: slices.Concat(s.policies, b.policies())}

	web0 := endpoint("job 5101 rank 0", "ucloud-jobs", b.web.Pods[0].Labels, "10.244.1.10")
	web1 := endpoint("job 5101 rank 1", "ucloud-jobs", b.web.Pods[1].Labels, "10.244.2.11")
	other := endpoint("job 5102 (another user's)", "ucloud-jobs", b.other.Pods[0].Labels, "10.244.1.12")
	batch := endpoint("job 5103 (batch, GPU)", "ucloud-jobs", b.batch.Pods[0].Labels, "10.244.3.13")
	sync := endpoint("syncthing 5104", "ucloud-jobs", b.syncthing.Pod.Labels, "10.244.1.14")
	term := endpoint("terminal 5105", "ucloud-jobs", b.terminal.Pod.Labels, "10.244.2.15")
	postgres := endpoint("PostgreSQL", "ucloud-im", s.postgres, "10.244.4.20")
	migrate := endpoint("migrate Job", "ucloud-im", s.migrate, "10.244.4.21")
	fns := map[string]netpol.Endpoint{}
	i := 0
	for name, ks := range s.functions {
		fns[name] = functionPod(ks, fmt.Sprintf("10.244.5.%d", 10+i))
		i++
	}
	broker := endpoint("Broker ingress", "knative-eventing", map[string]string{"eventing.knative.dev/brokerRole": "ingress", "app": "mt-broker-ingress"}, "10.244.6.30")
	brokerFilter := endpoint("Broker filter", "knative-eventing", map[string]string{"eventing.knative.dev/brokerRole": "filter", "app": "mt-broker-filter"}, "10.244.6.31")
	activator := endpoint("activator", "knative-serving", map[string]string{"app": "activator"}, "10.244.6.32")
	kourier := endpoint("Kourier gateway", "kourier-system", map[string]string{"app": "3scale-kourier-gateway"}, "10.244.6.33")
	dns := endpoint("CoreDNS", "kube-system", map[string]string{"k8s-app": "kube-dns"}, "10.244.0.5")
	stranger := endpoint("a pod in default", "default", map[string]string{"app": "x"}, "10.244.7.40")
	metadata := out("cloud metadata", "169.254.169.254")
	apiService := out("kubernetes Service IP", "10.96.0.1")
	apiEndpoint := out("apiserver endpoint (control plane)", "10.0.0.2")
	kubelet := out("a node's kubelet", "10.0.0.7")
	internet := out("internet host", "93.184.216.34")
	internet6 := out("internet host (IPv6)", "2606:2800:220:1::1")
	core := out("UCloud/Core", "130.225.164.120")
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP

	type row struct {
		from, to netpol.Endpoint
		proto    corev1.Protocol
		port     int32
		allowed  bool
	}
	rows := []row{
		// Job pods: their own job, DNS and the outside; nothing else inside.
		{web0, fns["config-update"], tcp, 8012, false}, // queue-proxy
		{web0, fns["config-update"], tcp, 8080, false}, // the function's own port
		{web0, fns["status-report"], tcp, 8012, false},
		{web0, fns["app-auth"], tcp, 8012, false},
		{web0, broker, tcp, 8080, false},
		{web0, postgres, tcp, 5432, false},
		{batch, postgres, tcp, 5432, false},
		{web0, metadata, tcp, 80, false},
		{web0, apiService, tcp, 443, false},
		{web0, apiEndpoint, tcp, 6443, false},
		{web0, kubelet, tcp, 10250, false},
		{web0, other, tcp, 8888, false},
		{web0, other, tcp, 22, false},
		{web0, batch, tcp, 22, false},
		{web0, sync, tcp, 8384, false}, // Syncthing's GUI
		{web0, web1, tcp, 29500, true}, // same job, any port (MPI, torch.distributed)
		{web1, web0, tcp, 8888, true},
		{web0, internet, tcp, 443, true},
		{web0, internet6, tcp, 443, true},
		{batch, internet, tcp, 80, true},
		{web0, dns, udp, 53, true},
		{web0, dns, tcp, 53, true},
		{web0, dns, tcp, 9153, false}, // CoreDNS metrics
		{web0, kourier, tcp, 8080, false},
		{web0, activator, tcp, 8012, false},
		// Into a job's web port: only through the authorizing proxy.
		{fns["app-auth"], web0, tcp, 8888, true},
		{fns["app-auth"], web1, tcp, 8888, true},
		{fns["app-auth"], web0, tcp, 22, false},
		{fns["app-auth"], batch, tcp, 8888, false}, // no web port
		{kourier, web0, tcp, 8888, false},          // the ingress itself no longer reaches jobs
		{fns["job-create"], web0, tcp, 8888, false},
		{other, web0, tcp, 8888, false},
		{internet, web0, tcp, 8888, false},
		{stranger, web0, tcp, 8888, false},
		// Integrated applications: fenced like jobs; Syncthing's sync port open to every device.
		{internet, sync, tcp, 22000, true},
		{internet6, sync, tcp, 22000, true},
		// Open on Syncthing's side, but another job's own policy keeps it from the cluster's addresses: it
		// reaches Syncthing only as the internet does, through a public address.
		{other, sync, tcp, 22000, false},
		{internet, sync, tcp, 8384, false},
		{sync, internet, tcp, 22000, true},
		{sync, postgres, tcp, 5432, false},
		{sync, fns["config-update"], tcp, 8012, false},
		{sync, metadata, tcp, 80, false},
		{term, internet, tcp, 443, true},
		{term, postgres, tcp, 5432, false},
		{term, fns["monitor"], tcp, 8012, false},
		{term, broker, tcp, 8080, false},
		{term, metadata, tcp, 80, false},
		{term, web0, tcp, 8888, false},
		{internet, term, tcp, 22, false},
		{fns["app-auth"], term, tcp, 80, false},
		{web0, term, tcp, 22, false},
		// The IM's namespace: Knative's components and the IM itself in, nothing else.
		{activator, fns["config-update"], tcp, 8012, true},
		{kourier, fns["job-create"], tcp, 8012, true},
		{brokerFilter, fns["status-report"], tcp, 8012, true},
		{fns["config-update"], fns["config-retrieve"], tcp, 8012, true},
		{stranger, fns["config-update"], tcp, 8012, false},
		{kourier, postgres, tcp, 5432, false},
		{activator, postgres, tcp, 5432, false},
		{stranger, postgres, tcp, 5432, false},
		// What the functions reach.
		{fns["monitor"], broker, tcp, 8080, true},
		{fns["job-create"], apiEndpoint, tcp, 6443, true},
		{fns["config-update"], core, tcp, 443, true},
		{fns["status-report"], dns, udp, 53, true},
		{fns["monitor"], metadata, tcp, 80, false},
		{fns["config-update"], internet, tcp, 80, false},
		{postgres, internet, tcp, 443, false},
		// The migrate Job: PostgreSQL and DNS, nothing outside.
		{migrate, postgres, tcp, 5432, true},
		{migrate, dns, udp, 53, true},
		{migrate, internet, tcp, 443, false},
		// The metrics listener (METRICS_ADDR, 9464): never from a job, an application, the ingress or a
		// stranger; without deploy/monitoring nothing at all opens it (TestMetricsPortWithTheMonitoringComponent).
		{web0, fns["monitor"], tcp, 9464, false},
		{web0, fns["status-report"], tcp, 9464, false},
		{term, fns["job-streams"], tcp, 9464, false},
		{sync, fns["config-update"], tcp, 9464, false},
		{stranger, fns["monitor"], tcp, 9464, false},
		// Knative's own namespaces reach every port of a function (the autoscaler scrapes queue-proxy's
		// 9090, the activator probes): the listener is reachable from the ingress pod, but no route leads
		// to it (Knative routes only to the serving port; TestMakeRunWalkthrough checks the gateway).
		{kourier, fns["job-create"], tcp, 9464, true},
	}
	// PostgreSQL: exactly the functions whose manifests give them DATABASE_URL.
	for name, ks := range s.functions {
		rows = append(rows, row{fns[name], postgres, tcp, 5432, usesDatabase(ks)})
	}
	for _, r := range rows {
		v, err := cluster.Check(r.from, r.to, r.proto, r.port)
		if err != nil {
			t.Fatalf("%s -> %s: %v", r.from.Name, r.to.Name, err)
		}
		word := map[bool]string{true: "allowed", false: "denied"}
		t.Logf("%-34s -> %-34s %s/%-5d %s", r.from.Name, r.to.Name, r.proto, r.port, word[v.Allowed])
		if v.Allowed != r.allowed {
			t.Errorf("%s -> %s %s/%d: %s; want %s", r.from.Name, r.to.Name, r.proto, r.port, v, word[r.allowed])
		}
	}
}

// With the optional monitoring component, Prometheus in the namespace "monitoring" scrapes every function's
// metrics listener and nothing else of it; job pods, applications and other namespaces still cannot reach
// the listener, and the component opens nothing to jobs.
func TestMetricsPortWithTheMonitoringComponent(t *testing.T) {
	s := readShipped(t)
	b := buildJobs(t, s, "ucloud-jobs", 5200)
	raw, err := os.ReadFile("monitoring/networkpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var scrape networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(raw, &scrape); err != nil {
		t.Fatalf("monitoring/networkpolicy.yaml: %v", err)
	}
	cluster := &netpol.Cluster{Policies: slices.Concat(s.policies, b.policies(), []networkingv1.NetworkPolicy{scrape})}
	prometheus := endpoint("Prometheus", "monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}, "10.244.8.50")
	web0 := endpoint("job 5201 rank 0", "ucloud-jobs", b.web.Pods[0].Labels, "10.244.1.10")
	term := endpoint("terminal 5205", "ucloud-jobs", b.terminal.Pod.Labels, "10.244.2.15")
	stranger := endpoint("a pod in default", "default", map[string]string{"app": "x"}, "10.244.7.40")
	postgres := endpoint("PostgreSQL", "ucloud-im", s.postgres, "10.244.4.20")
	if len(s.functions) == 0 {
		t.Fatal("no functions in the rendered manifests")
	}
	i := 0
	for name, ks := range s.functions {
		f := functionPod(ks, fmt.Sprintf("10.244.5.%d", 10+i))
		i++
		for _, r := range []struct {
			from    netpol.Endpoint
			port    int32
			allowed bool
		}{
			{prometheus, 9464, true},
			{prometheus, 8012, false}, // Core's routes stay Knative's
			{prometheus, 8080, false},
			{web0, 9464, false},
			{term, 9464, false},
			{stranger, 9464, false},
		} {
			v, err := cluster.Check(r.from, f, corev1.ProtocolTCP, r.port)
			if err != nil {
				t.Fatalf("%s -> %s: %v", r.from.Name, name, err)
			}
			if v.Allowed != r.allowed {
				t.Errorf("%s -> %s tcp/%d: %s; want allowed=%v", r.from.Name, name, r.port, v, r.allowed)
			}
		}
	}
	for _, to := range []netpol.Endpoint{web0, term, postgres} {
		if v, _ := cluster.Check(prometheus, to, corev1.ProtocolTCP, 9464); v.Allowed {
			t.Errorf("Prometheus -> %s tcp/9464: %s; the component must open the functions' listener only", to.Name, v)
		}
	}
}
