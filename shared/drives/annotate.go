package drives

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// AnnotationMounts records, on a normal job's pods, whose folders they mount and how, so the monitor can
// decide the owner's access again while the job runs (Core checked it only at submit).
const AnnotationMounts = "ucloud.dk/mounts"

// Mounts is what AnnotationMounts holds.
type Mounts struct {
	Owner   ucloud.ResourceOwner `json:"owner"`
	Folders []MountedFolder      `json:"folders"`
}

// MountedFolder is one folder of Mounts.
type MountedFolder struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Annotate records owner's folders on pod (nothing without folders).
func Annotate(pod *corev1.Pod, owner ucloud.ResourceOwner, folders []Folder) {
	if len(folders) == 0 {
		return
	}
	m := Mounts{Owner: owner}
	for _, f := range folders {
		m.Folders = append(m.Folders, MountedFolder{Path: f.UCloudPath, ReadOnly: f.ReadOnly})
	}
	raw, _ := json.Marshal(m)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationMounts] = string(raw)
}

// MountsOf reads what Annotate recorded; false when the pod mounts no folder.
func MountsOf(pod *corev1.Pod) (ucloud.ResourceOwner, []Folder, bool) {
	raw, ok := pod.Annotations[AnnotationMounts]
	if !ok {
		return ucloud.ResourceOwner{}, nil, false
	}
	var m Mounts
	if json.Unmarshal([]byte(raw), &m) != nil {
		return ucloud.ResourceOwner{}, nil, false
	}
	out := make([]Folder, len(m.Folders))
	for i, f := range m.Folders {
		out[i] = Folder{UCloudPath: f.Path, ReadOnly: f.ReadOnly}
	}
	return m.Owner, out, len(out) > 0
}
