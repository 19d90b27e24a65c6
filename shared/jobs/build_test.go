package jobs_test

import (
	"math"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// quantities compares resource quantities by value (they carry a cached string form).
var quantities = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// dropSpecHash removes the spec-hash annotation, left to TestBuildStampsASpecHash: its value is a digest,
// not a choice a reader can check by eye.
func dropSpecHash(objs jobs.Objects) {
	all := []metav1.Object{objs.Service, objs.Policy}
	for _, p := range objs.Pods {
		all = append(all, p)
	}
	for _, o := range all {
		a := o.GetAnnotations()
		delete(a, jobs.AnnotationSpecHash)
		if len(a) == 0 {
			a = nil
		}
		o.SetAnnotations(a)
	}
}

// hardened is the security context every job container gets (isolation.Harden), written out.
func hardened() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Privileged: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{
			"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
			"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func tcpPort(p int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(p))}
}

// defaultPolicy is the NetworkPolicy of job id with the zero isolation settings (the safe defaults): only the
// job's own pods, DNS, app-auth on the web port (when there is one) and addresses outside private ranges.
func defaultPolicy(id, ns string, labels map[string]string, web int32) *networkingv1.NetworkPolicy {
	sameJob := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ucloud.dk/jobId": id}}}
	ingress := []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{sameJob}}}
	if web > 0 {
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ucloud-im"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "app-auth"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{tcpPort(web)},
		})
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-" + id, Namespace: ns, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"ucloud.dk/jobId": id}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     ingress,
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{sameJob}},
				{To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}}, Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))}, tcpPort(53)}},
				{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "100.64.0.0/10", "169.254.169.254/32", "172.16.0.0/12", "192.168.0.0/16"}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fc00::/7"}}},
				}},
			},
		},
	}
}

// jobPod is one rank's pod as written out by hand.
func jobPod(name, ns, id, rank, replicas string, labels, annotations map[string]string, c corev1.Container) *corev1.Pod {
	c.Name = "user-job"
	c.SecurityContext = hardened()
	c.Env = append(c.Env, corev1.EnvVar{Name: "UCLOUD_JOB_ID", Value: id},
		corev1.EnvVar{Name: "UCLOUD_TASK_COUNT", Value: replicas}, corev1.EnvVar{Name: "VC_JOB_NUM", Value: replicas},
		corev1.EnvVar{Name: "VK_TASK_INDEX", Value: rank}, corev1.EnvVar{Name: "VC_TASK_INDEX", Value: rank},
		corev1.EnvVar{Name: "UCLOUD_RANK", Value: rank}, corev1.EnvVar{Name: "UCLOUD_URL_IS_PUBLIC", Value: "false"})
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr.To(false), EnableServiceLinks: ptr.To(false),
			Hostname: name, Subdomain: "j-" + id,
			SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers:      []corev1.Container{c},
		},
	}
}

func resources(cpu, mem string) corev1.ResourceRequirements {
	l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
	return corev1.ResourceRequirements{Requests: l, Limits: l}
}

func TestBuildTable(t *testing.T) {
	project := "proj-1"
	small := jobs.Product{ID: "cpu-1", Category: "cpu", CPU: 1, MemoryGiB: 4}
	batch := jobs.Application{Image: "alpine:3", Command: []string{"sh", "-c", "run"}}
	for _, tc := range []struct {
		name    string
		job     ucloud.Job
		product jobs.Product
		app     jobs.Application
		ns      string
		want    jobs.Objects
	}{{
		name: "single rank, no time allocation", ns: "jobs", product: small, app: batch,
		job: ucloud.Job{ID: "11", Owner: ucloud.ResourceOwner{CreatedBy: "alice"}, Specification: ucloud.JobSpecification{Replicas: 1}},
		want: jobs.Objects{
			Pods: []*corev1.Pod{jobPod("j-11-job-0", "jobs", "11", "0", "1",
				map[string]string{"ucloud.dk/jobId": "11", "ucloud.dk/rank": "0"},
				map[string]string{"ucloud.dk/replicas": "1"},
				corev1.Container{Image: "alpine:3", Command: []string{"sh", "-c", "run"}, Resources: resources("1", "4Gi")})},
			Service: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "j-11", Namespace: "jobs", Labels: map[string]string{"ucloud.dk/jobId": "11"}},
				Spec:       corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"ucloud.dk/jobId": "11"}, PublishNotReadyAddresses: true},
			},
			Policy: defaultPolicy("11", "jobs", map[string]string{"ucloud.dk/jobId": "11"}, 0),
		},
	}, {
		name: "single rank with a time allocation and a GPU in a project", ns: "jobs", app: batch,
		product: jobs.Product{ID: "gpu-1", Category: "gpu", CPU: 2.5, MemoryGiB: 0.5, GPU: 1},
		job: ucloud.Job{ID: "12", Owner: ucloud.ResourceOwner{CreatedBy: "alice", Project: &project},
			Specification: ucloud.JobSpecification{Replicas: 1, TimeAllocation: &ucloud.SimpleDuration{Hours: 1, Minutes: 30, Seconds: 5}}},
		want: jobs.Objects{
			Pods: []*corev1.Pod{jobPod("j-12-job-0", "jobs", "12", "0", "1",
				map[string]string{"ucloud.dk/jobId": "12", "ucloud.dk/rank": "0", "ucloud.dk/workspaceId": "proj-1"},
				map[string]string{"ucloud.dk/replicas": "1", "ucloud.dk/time-allocation-ms": "5405000"},
				corev1.Container{Image: "alpine:3", Command: []string{"sh", "-c", "run"}, Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{"cpu": resource.MustParse("2500m"), "memory": resource.MustParse("512Mi"), "nvidia.com/gpu": resource.MustParse("1")},
					Limits:   corev1.ResourceList{"cpu": resource.MustParse("2500m"), "memory": resource.MustParse("512Mi"), "nvidia.com/gpu": resource.MustParse("1")},
				}})},
			Service: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "j-12", Namespace: "jobs", Labels: map[string]string{"ucloud.dk/jobId": "12", "ucloud.dk/workspaceId": "proj-1"}},
				Spec:       corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"ucloud.dk/jobId": "12"}, PublishNotReadyAddresses: true},
			},
			Policy: defaultPolicy("12", "jobs", map[string]string{"ucloud.dk/jobId": "12", "ucloud.dk/workspaceId": "proj-1"}, 0),
		},
	}, {
		name: "three ranks with a time allocation", ns: "ns2", product: small, app: batch,
		job: ucloud.Job{ID: "13", Owner: ucloud.ResourceOwner{CreatedBy: "bob"},
			Specification: ucloud.JobSpecification{Replicas: 3, TimeAllocation: &ucloud.SimpleDuration{Minutes: 10}}},
		want: jobs.Objects{
			Pods: []*corev1.Pod{
				jobPod("j-13-job-0", "ns2", "13", "0", "3", map[string]string{"ucloud.dk/jobId": "13", "ucloud.dk/rank": "0"},
					map[string]string{"ucloud.dk/replicas": "3", "ucloud.dk/time-allocation-ms": "600000"},
					corev1.Container{Image: "alpine:3", Command: []string{"sh", "-c", "run"}, Resources: resources("1", "4Gi")}),
				jobPod("j-13-job-1", "ns2", "13", "1", "3", map[string]string{"ucloud.dk/jobId": "13", "ucloud.dk/rank": "1"},
					map[string]string{"ucloud.dk/replicas": "3", "ucloud.dk/time-allocation-ms": "600000"},
					corev1.Container{Image: "alpine:3", Command: []string{"sh", "-c", "run"}, Resources: resources("1", "4Gi")}),
				jobPod("j-13-job-2", "ns2", "13", "2", "3", map[string]string{"ucloud.dk/jobId": "13", "ucloud.dk/rank": "2"},
					map[string]string{"ucloud.dk/replicas": "3", "ucloud.dk/time-allocation-ms": "600000"},
					corev1.Container{Image: "alpine:3", Command: []string{"sh", "-c", "run"}, Resources: resources("1", "4Gi")}),
			},
			Service: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "j-13", Namespace: "ns2", Labels: map[string]string{"ucloud.dk/jobId": "13"}},
				Spec:       corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"ucloud.dk/jobId": "13"}, PublishNotReadyAddresses: true},
			},
			Policy: defaultPolicy("13", "ns2", map[string]string{"ucloud.dk/jobId": "13"}, 0),
		},
	}, {
		name: "web app, two ranks", ns: "jobs", product: small,
		app: jobs.Application{Image: "jupyter/base:4", WebPort: 8888},
		job: ucloud.Job{ID: "14", Owner: ucloud.ResourceOwner{CreatedBy: "carol"}, Specification: ucloud.JobSpecification{Replicas: 2}},
		want: jobs.Objects{
			Pods: []*corev1.Pod{
				jobPod("j-14-job-0", "jobs", "14", "0", "2", map[string]string{"ucloud.dk/jobId": "14", "ucloud.dk/rank": "0"},
					map[string]string{"ucloud.dk/replicas": "2"},
					corev1.Container{Image: "jupyter/base:4", Resources: resources("1", "4Gi"),
						Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8888, Protocol: corev1.ProtocolTCP}}}),
				jobPod("j-14-job-1", "jobs", "14", "1", "2", map[string]string{"ucloud.dk/jobId": "14", "ucloud.dk/rank": "1"},
					map[string]string{"ucloud.dk/replicas": "2"},
					corev1.Container{Image: "jupyter/base:4", Resources: resources("1", "4Gi"),
						Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8888, Protocol: corev1.ProtocolTCP}}}),
			},
			Service: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "j-14", Namespace: "jobs", Labels: map[string]string{"ucloud.dk/jobId": "14"}},
				Spec: corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"ucloud.dk/jobId": "14"}, PublishNotReadyAddresses: true,
					Ports: []corev1.ServicePort{{Name: "web", Port: 8888, TargetPort: intstr.FromInt32(8888), Protocol: corev1.ProtocolTCP}}},
			},
			Policy: defaultPolicy("14", "jobs", map[string]string{"ucloud.dk/jobId": "14"}, 8888),
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := jobs.MakeObjects(tc.job, tc.product, tc.app, jobs.Settings{Namespace: tc.ns})
			if err != nil {
				t.Fatal(err)
			}
			dropSpecHash(got)
			if diff := cmp.Diff(tc.want, got, quantities); diff != "" {
				t.Errorf("Unexpected Objects (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestBuildStampsASpecHash: every object carries a hash of what it was built from; the same input gives the
// same hash (a retried create recognises its own object) and different ranks different ones.
func TestBuildStampsASpecHash(t *testing.T) {
	job := ucloud.Job{ID: "15", Specification: ucloud.JobSpecification{Replicas: 2}}
	p, app := jobs.Product{CPU: 1, MemoryGiB: 1}, jobs.Application{Image: "alpine:3"}
	a, err := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := jobs.MakeObjects(job, p, app, jobs.Settings{Namespace: "jobs"})
	hex24 := regexp.MustCompile(`^[0-9a-f]{24}$`)
	objs := []metav1.Object{a.Pods[0], a.Pods[1], a.Service, a.Policy}
	again := []metav1.Object{b.Pods[0], b.Pods[1], b.Service, b.Policy}
	seen := map[string]string{}
	for i, o := range objs {
		h := o.GetAnnotations()[jobs.AnnotationSpecHash]
		if !hex24.MatchString(h) {
			t.Errorf("%s: spec hash %q, want 24 hex digits", o.GetName(), h)
		}
		if h2 := again[i].GetAnnotations()[jobs.AnnotationSpecHash]; h2 != h {
			t.Errorf("%s: spec hash %q then %q for the same input", o.GetName(), h, h2)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s share spec hash %s", other, o.GetName(), h)
		}
		seen[h] = o.GetName()
	}
}

func TestBuildRefusesNoReplicas(t *testing.T) {
	for _, n := range []int{0, -1} {
		got, err := jobs.MakeObjects(ucloud.Job{ID: "16", Specification: ucloud.JobSpecification{Replicas: n}}, jobs.Product{CPU: 1, MemoryGiB: 1}, jobs.Application{Image: "a"}, jobs.Settings{Namespace: "jobs"})
		if err == nil || !cmp.Equal(jobs.Objects{}, got) {
			t.Errorf("replicas %d: got %+v, %v; want no objects and an error", n, got, err)
		}
	}
}

// A product's CPU count is requested to the nearest millicore: 1.005 is 1005m (truncating made it 1004m,
// since 1.005*1000 is 1004.999... in floating point).
func TestBuildRoundsCPUToTheNearestMillicore(t *testing.T) {
	for _, cpu := range []float64{1.005, 0.3, 2.675, 64} {
		job := ucloud.Job{ID: "42", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"}, Specification: ucloud.JobSpecification{Replicas: 1}}
		objs, err := jobs.MakeObjects(job, jobs.Product{ID: "p", Category: "c", CPU: cpu, MemoryGiB: 1},
			jobs.Application{Image: "alpine:3"}, jobs.Settings{Namespace: "ns"})
		if err != nil {
			t.Fatal(err)
		}
		want := int64(math.Round(cpu * 1000))
		for _, rl := range []corev1.ResourceList{objs.Pods[0].Spec.Containers[0].Resources.Requests, objs.Pods[0].Spec.Containers[0].Resources.Limits} {
			if got := rl.Cpu().MilliValue(); got != want {
				t.Errorf("CPU %v: %dm, want %dm", cpu, got, want)
			}
		}
	}
}
