package iapps

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/kube"
)

// configMapName is the ConfigMap holding an application's configuration for its container.
func configMapName(jobID string) string { return "j-" + jobID + "-iapp-config" }

// ConfigFile is where the application's container finds its configuration (ConfigMap mount).
const ConfigFile = "/etc/ucloud/iapp/config.json"

// basePod is the rank-0 pod every integrated application starts from: the job's names and labels, the ETag
// and application annotations the reconcile rule compares, and the configuration mounted from a ConfigMap.
func basePod(job Job, cfg []byte, image string, command []string, cpu, memory string) (*corev1.Pod, *corev1.ConfigMap) {
	name := kube.PodName(job.ID, 0)
	labels := kube.JobLabels(job.ID, 0, job.Key.Project)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configMapName(job.ID), Namespace: job.Namespace, Labels: labels,
			Annotations: map[string]string{kube.AnnotationIAppETag: job.ETag}},
		Data: map[string]string{"config.json": string(cfg)},
	}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: job.Namespace, Labels: labels,
			Annotations: map[string]string{kube.AnnotationIAppETag: job.ETag, kube.AnnotationIAppName: job.Key.App},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			Hostname:                      name,
			Subdomain:                     kube.ServiceName(job.ID),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: kube.ContainerName, Image: image, Command: command,
				Resources:    corev1.ResourceRequirements{Requests: req, Limits: req},
				VolumeMounts: []corev1.VolumeMount{{Name: "iapp-config", MountPath: "/etc/ucloud/iapp", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "iapp-config", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}},
			}}},
		},
	}
	isolation.Harden(pod)
	return pod, cm
}

// policy is the NetworkPolicy of an application's job: fenced in as every job is (see isolation.Policy).
func policy(iso isolation.Env, job Job, ports isolation.Ports) *networkingv1.NetworkPolicy {
	return iso.Policy(kube.PolicyName(job.ID), job.Namespace, kube.JobLabels(job.ID, 0, job.Key.Project), kube.LabelJobID, job.ID, ports)
}

// FilesystemVolume is the shared volume holding users' files; folders are mounted from it by sub-path.
const FilesystemVolume = drives.ClaimVolume

// mountPaths gives each UCloud path its place in the container, /work/<last part>, made unique with a
// numeric suffix when two folders share a name (/1/Sync and /2/Sync).
func mountPaths(ucloudPaths []string) []string {
	out := make([]string, len(ucloudPaths))
	used := map[string]bool{}
	for i, p := range ucloudPaths {
		base := "/work/" + lastPart(p)
		candidate := base
		for n := 2; used[candidate]; n++ {
			candidate = fmt.Sprintf("%s-%d", base, n)
		}
		used[candidate] = true
		out[i] = candidate
	}
	return out
}

// mountFolders mounts folders by drive (drives.Layout: each drive whole, by its own folder; the folders
// are links at their paths under /work), after which the pod is hardened again for the init container.
func mountFolders(pod *corev1.Pod, folders []drives.Folder) error {
	layout, err := drives.Plan(folders)
	if err != nil {
		return err
	}
	layout.Apply(pod, "")
	isolation.Harden(pod)
	return nil
}

func lastPart(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
