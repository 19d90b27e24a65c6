package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Annotations the job function sets.
const (
	// AnnotationSpecHash identifies what an object was built from, so a retried create can tell its own
	// earlier object (success) from a different one with the same name (conflict).
	AnnotationSpecHash = "ucloud.dk/spec-hash"
	// AnnotationTimeAllocation is the job's time allocation in milliseconds; extend raises it.
	AnnotationTimeAllocation = kube.AnnotationTimeAllocation
)

// Objects are the Kubernetes objects of one job: a pod per rank, and the headless service and network
// policy. Rank 0 owns the rest, so deleting it removes the whole job.
type Objects struct {
	Pods    []*corev1.Pod
	Service *corev1.Service
	Policy  *networkingv1.NetworkPolicy
}

// Settings are the provider's choices the builders need.
type Settings struct {
	Namespace string
	// Isolation describes the cluster for the job's NetworkPolicy (zero: the safe defaults).
	Isolation isolation.Env
	// HelperImage runs the init container that links the job's folders into /work (default
	// drives.DefaultHelperImage).
	HelperImage string
}

// MakeObjects makes the objects of job with the given product and application (ResolveApplication).
func MakeObjects(job ucloud.Job, p Product, app Application, s Settings) (Objects, error) {
	replicas := job.Specification.Replicas
	if replicas < 1 {
		return Objects{}, fmt.Errorf("replicas must be at least 1, not %d", replicas)
	}
	project := ""
	if job.Owner.Project != nil {
		project = *job.Owner.Project
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(math.Round(p.CPU*1000)), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(p.MemoryGiB*(1<<30)), resource.BinarySI),
	}
	if p.GPU > 0 {
		res["nvidia.com/gpu"] = *resource.NewQuantity(int64(p.GPU), resource.DecimalSI)
	}
	annotations := map[string]string{kube.AnnotationReplicas: strconv.Itoa(replicas)}
	if ta := job.Specification.TimeAllocation; ta != nil {
		annotations[AnnotationTimeAllocation] = strconv.FormatInt(ta.Milliseconds(), 10)
	}
	layout, err := drives.JobLayout(job)
	if err != nil {
		return Objects{}, err
	}
	var objs Objects
	for rank := range replicas {
		name := kube.PodName(job.ID, rank)
		c := corev1.Container{
			Name: kube.ContainerName, Image: app.Image, Command: literal(app.Command), WorkingDir: app.WorkingDir,
			Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
			Env:       jobEnv(job, rank, app.Env),
		}
		if app.WebPort > 0 {
			c.Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: int32(app.WebPort), Protocol: corev1.ProtocolTCP}}
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace, Labels: kube.JobLabels(job.ID, rank, project), Annotations: copyMap(annotations)},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr.To(false),
				EnableServiceLinks: ptr.To(false), Hostname: name, Subdomain: kube.ServiceName(job.ID),
				Containers: []corev1.Container{c},
			},
		}
		// The job's folders, by drive (see drives.Layout): never a sub-path deeper than a drive's own folder.
		layout.Apply(pod, s.HelperImage)
		drives.Annotate(pod, job.Owner, drives.JobFolders(job)) // the monitor decides the owner's access again
		isolation.Harden(pod)
		objs.Pods = append(objs.Pods, pod)
	}
	labels := kube.JobLabels(job.ID, 0, project)
	delete(labels, kube.LabelRank)
	objs.Service = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: kube.ServiceName(job.ID), Namespace: s.Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{kube.LabelJobID: job.ID},
			PublishNotReadyAddresses: true,
		},
	}
	if app.WebPort > 0 {
		objs.Service.Spec.Ports = []corev1.ServicePort{{Name: "web", Port: int32(app.WebPort), TargetPort: intstr.FromInt32(int32(app.WebPort)), Protocol: corev1.ProtocolTCP}}
	}
	objs.Policy = s.Isolation.Policy(kube.PolicyName(job.ID), s.Namespace, labels, kube.LabelJobID, job.ID, isolation.Ports{Web: int32(app.WebPort)})
	stamp(objs.Service, objs.Service.Spec)
	stamp(objs.Policy, objs.Policy.Spec)
	for _, p := range objs.Pods {
		stamp(p, p.Spec)
	}
	return objs, nil
}

// jobEnv is the container's environment as the original sets it: the application's own, then the job's
// (number of ranks and this one's, under the names UCloud's and Volcano's tools read), the job's own
// values last so an application cannot override them.
func jobEnv(job ucloud.Job, rank int, appEnv []corev1.EnvVar) []corev1.EnvVar {
	out := make([]corev1.EnvVar, 0, len(appEnv)+7)
	for _, e := range appEnv {
		out = append(out, corev1.EnvVar{Name: e.Name, Value: escapeRefs(e.Value)})
	}
	replicas, r := strconv.Itoa(job.Specification.Replicas), strconv.Itoa(rank)
	public := false
	for _, res := range job.Specification.Resources {
		public = public || res.Type == ucloud.ValueIngress
	}
	return append(out,
		corev1.EnvVar{Name: "UCLOUD_JOB_ID", Value: job.ID},
		corev1.EnvVar{Name: "UCLOUD_TASK_COUNT", Value: replicas}, corev1.EnvVar{Name: "VC_JOB_NUM", Value: replicas},
		corev1.EnvVar{Name: "VK_TASK_INDEX", Value: r}, corev1.EnvVar{Name: "VC_TASK_INDEX", Value: r},
		corev1.EnvVar{Name: "UCLOUD_RANK", Value: r},
		corev1.EnvVar{Name: "UCLOUD_URL_IS_PUBLIC", Value: strconv.FormatBool(public)},
	)
}

// literal is an argument vector Kubernetes passes on unchanged.
func literal(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = escapeRefs(a)
	}
	return out
}

// escapeRefs keeps Kubernetes from expanding $(VAR) in a command or an environment value: the user's text
// reaches the process as typed ($$ is Kubernetes' escape for $). The original runs its command from a
// script, where Kubernetes expands nothing.
func escapeRefs(s string) string {
	return strings.ReplaceAll(s, "$", "$$")
}

// stamp records the hash of what o was built from.
func stamp(o metav1.Object, from any) {
	raw, _ := json.Marshal(from)
	if o, ok := o.(interface{ GetLabels() map[string]string }); ok {
		lraw, _ := json.Marshal(o.GetLabels())
		raw = append(raw, lraw...)
	}
	sum := sha256.Sum256(raw)
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationSpecHash] = hex.EncodeToString(sum[:12])
	o.SetAnnotations(a)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
