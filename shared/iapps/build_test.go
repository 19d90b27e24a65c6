package iapps_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kptr "k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/iapps"
)

// quantities compares resource quantities by value (they carry a cached string form).
var quantities = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func tcpPolicyPort(p int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: kptr.To(corev1.ProtocolTCP), Port: kptr.To(intstr.FromInt32(p))}
}

// iappPolicy is an application job's NetworkPolicy with the zero isolation settings (the safe defaults),
// written out: the job's own pods, DNS, addresses outside private ranges, and the public ports from anywhere.
func iappPolicy(id, ns string, labels map[string]string, public ...int32) *networkingv1.NetworkPolicy {
	sameJob := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ucloud.dk/jobId": id}}}
	ingress := []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{sameJob}}}
	if len(public) > 0 {
		var ports []networkingv1.NetworkPolicyPort
		for _, p := range public {
			ports = append(ports, tcpPolicyPort(p))
		}
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{Ports: ports})
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
				}}, Ports: []networkingv1.NetworkPolicyPort{{Protocol: kptr.To(corev1.ProtocolUDP), Port: kptr.To(intstr.FromInt32(53))}, tcpPolicyPort(53)}},
				{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "100.64.0.0/10", "169.254.169.254/32", "172.16.0.0/12", "192.168.0.0/16"}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fc00::/7"}}},
				}},
			},
		},
	}
}

// hardened is the security context every container gets.
func hardened() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Privileged: kptr.To(false), AllowPrivilegeEscalation: kptr.To(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{
			"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
			"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// iappPod is an application's rank-0 pod written out: hardened, the configuration mounted, and the folders
// by drive: each drive in rw whole (subPath = its id) at /ucloud/drives/<id>, an emptyDir at /work, and an
// init container linking each folder (links: [path in the container, target]) into its drive's mount.
func iappPod(id, ns, app, etag string, labels map[string]string, image string, command []string, cpu, mem string,
	rw []string, links [][2]string, ports []corev1.ContainerPort) *corev1.Pod {
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
	volumes := []corev1.Volume{{Name: "iapp-config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "j-" + id + "-iapp-config"}},
	}}}
	mounts := []corev1.VolumeMount{{Name: "iapp-config", MountPath: "/etc/ucloud/iapp", ReadOnly: true}}
	var inits []corev1.Container
	if len(links) > 0 {
		volumes = append(volumes, corev1.Volume{Name: "ucloud-filesystem", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "ucloud-filesystem"},
		}}, corev1.Volume{Name: "ucloud-work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		for _, d := range rw {
			mounts = append(mounts, corev1.VolumeMount{Name: "ucloud-filesystem", SubPath: d, MountPath: "/ucloud/drives/" + d})
		}
		mounts = append(mounts, corev1.VolumeMount{Name: "ucloud-work", MountPath: "/work"})
		args := []string{"-c", `set -e; while [ $# -gt 0 ]; do ln -sfn "$1" "$2"; shift 2; done`, "links"}
		for _, l := range links {
			args = append(args, l[1], l[0])
		}
		small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
		inits = []corev1.Container{{Name: "ucloud-links", Image: "busybox:1.37", Command: []string{"sh"}, Args: args,
			VolumeMounts: []corev1.VolumeMount{{Name: "ucloud-work", MountPath: "/work"}},
			Resources:    corev1.ResourceRequirements{Requests: small, Limits: small}, SecurityContext: hardened()}}
	}
	name := "j-" + id + "-job-0"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels,
			Annotations: map[string]string{"ucloud.dk/iapp-etag": etag, "ucloud.dk/iapp-name": app}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: kptr.To(false), EnableServiceLinks: kptr.To(false),
			Hostname: name, Subdomain: "j-" + id, TerminationGracePeriodSeconds: kptr.To[int64](5),
			SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			InitContainers:  inits,
			Containers: []corev1.Container{{
				Name: "user-job", Image: image, Command: command, Ports: ports,
				Resources:       corev1.ResourceRequirements{Requests: req, Limits: req},
				VolumeMounts:    mounts,
				SecurityContext: hardened(),
			}},
			Volumes: volumes,
		},
	}
}

func configMap(id, ns, etag string, labels map[string]string, cfg string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "j-" + id + "-iapp-config", Namespace: ns, Labels: labels,
			Annotations: map[string]string{"ucloud.dk/iapp-etag": etag}},
		Data: map[string]string{"config.json": cfg},
	}
}

func TestAppBuildTable(t *testing.T) {
	const device = "AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH"
	personal := map[string]string{"ucloud.dk/jobId": "21", "ucloud.dk/rank": "0"}
	inProject := map[string]string{"ucloud.dk/jobId": "22", "ucloud.dk/rank": "0", "ucloud.dk/workspaceId": "p1"}
	syncCfg := `{"devices":[{"deviceId":"` + device + `","label":"laptop"}],"folders":[{"id":"a","ucloudPath":"/1/Sync","path":"/work/Sync"},{"id":"b","ucloudPath":"/2/Sync","path":"/work/Sync-2"}]}`
	for _, tc := range []struct {
		name string
		app  iapps.App
		job  iapps.Job
		cfg  string
		want iapps.Objects
	}{{
		name: "syncthing, default image, two folders of one name",
		app:  iapps.Syncthing{},
		job:  iapps.Job{ID: "21", Key: iapps.Key{App: "syncthing", CreatedBy: "alice"}, ETag: "e1", Namespace: "jobs"},
		cfg:  syncCfg,
		want: iapps.Objects{
			Pod: iappPod("21", "jobs", "syncthing", "e1", personal, "dreg.cloud.sdu.dk/ucloud/syncthing-go:latest",
				[]string{"/usr/bin/ucloud-sync", "/etc/ucloud/iapp/config.json"}, "400m", "2Gi",
				[]string{"1", "2"}, [][2]string{{"/work/Sync", "/ucloud/drives/1/Sync"}, {"/work/Sync-2", "/ucloud/drives/2/Sync"}},
				[]corev1.ContainerPort{{Name: "sync", ContainerPort: 22000, Protocol: corev1.ProtocolTCP}}),
			ConfigMap: configMap("21", "jobs", "e1", personal, syncCfg),
			Services: []*corev1.Service{{
				ObjectMeta: metav1.ObjectMeta{Name: "j-21-syncthing", Namespace: "jobs", Labels: personal},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{"ucloud.dk/jobId": "21"},
					Ports:    []corev1.ServicePort{{Name: "sync", Port: 22000, TargetPort: intstr.FromInt32(22000), Protocol: corev1.ProtocolTCP}},
				},
			}},
			Policy: iappPolicy("21", "jobs", personal, 22000),
		},
	}, {
		name: "syncthing, own image, project, no folders",
		app:  iapps.Syncthing{Image: "registry.example/sync:2"},
		job:  iapps.Job{ID: "22", Key: iapps.Key{App: "syncthing", CreatedBy: "bob", Project: "p1"}, ETag: "e2", Namespace: "ns2"},
		cfg:  `{"devices":[],"folders":[]}`,
		want: iapps.Objects{
			Pod: iappPod("22", "ns2", "syncthing", "e2", inProject, "registry.example/sync:2",
				[]string{"/usr/bin/ucloud-sync", "/etc/ucloud/iapp/config.json"}, "400m", "2Gi", nil, nil,
				[]corev1.ContainerPort{{Name: "sync", ContainerPort: 22000, Protocol: corev1.ProtocolTCP}}),
			ConfigMap: configMap("22", "ns2", "e2", inProject, `{"devices":[],"folders":[]}`),
			Services: []*corev1.Service{{
				ObjectMeta: metav1.ObjectMeta{Name: "j-22-syncthing", Namespace: "ns2", Labels: inProject},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{"ucloud.dk/jobId": "22"},
					Ports:    []corev1.ServicePort{{Name: "sync", Port: 22000, TargetPort: intstr.FromInt32(22000), Protocol: corev1.ProtocolTCP}},
				},
			}},
			Policy: iappPolicy("22", "ns2", inProject, 22000),
		},
	}, {
		name: "terminal, default image, folders mounted read-write with unique paths",
		app:  iapps.Terminal{},
		job:  iapps.Job{ID: "21", Key: iapps.Key{App: "terminal", CreatedBy: "alice"}, ETag: "e3", Namespace: "jobs"},
		cfg:  `{"folders":["/1/Home","/3/Data/Home","/4/x"]}`,
		want: iapps.Objects{
			Pod: iappPod("21", "jobs", "terminal", "e3", personal, "ubuntu:24.04", []string{"sleep", "infinity"}, "500m", "2Gi",
				[]string{"1", "3", "4"}, [][2]string{{"/work/Home", "/ucloud/drives/1/Home"}, {"/work/Home-2", "/ucloud/drives/3/Data/Home"}, {"/work/x", "/ucloud/drives/4/x"}}, nil),
			ConfigMap: configMap("21", "jobs", "e3", personal, `{"folders":["/1/Home","/3/Data/Home","/4/x"]}`),
			Policy:    iappPolicy("21", "jobs", personal),
		},
	}, {
		name: "terminal, own image, project, the original IM's key spelling",
		app:  iapps.Terminal{Image: "registry.example/shell:1"},
		job:  iapps.Job{ID: "22", Key: iapps.Key{App: "terminal", CreatedBy: "bob", Project: "p1"}, ETag: "e4", Namespace: "ns2"},
		cfg:  `{"Folders":["/9/Work"]}`,
		want: iapps.Objects{
			Pod: iappPod("22", "ns2", "terminal", "e4", inProject, "registry.example/shell:1", []string{"sleep", "infinity"}, "500m", "2Gi",
				[]string{"9"}, [][2]string{{"/work/Work", "/ucloud/drives/9/Work"}}, nil),
			ConfigMap: configMap("22", "ns2", "e4", inProject, `{"Folders":["/9/Work"]}`),
			Policy:    iappPolicy("22", "ns2", inProject),
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.app.MakeObjects(tc.job, json.RawMessage(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, quantities); diff != "" {
				t.Errorf("Unexpected Objects (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestAppBuildRefusesAStoredConfigThatIsNotJSON(t *testing.T) {
	job := iapps.Job{ID: "23", Key: iapps.Key{App: "x", CreatedBy: "alice"}, ETag: "e", Namespace: "jobs"}
	for _, app := range []iapps.App{iapps.Syncthing{}, iapps.Terminal{}} {
		got, err := app.MakeObjects(job, json.RawMessage(`{"folders":`))
		if err == nil || !cmp.Equal(iapps.Objects{}, got) {
			t.Errorf("%s: got %+v, %v; want no objects and an error", app.Name(), got, err)
		}
	}
}
