package drives

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The mount layout. Every drive a pod needs is mounted whole from the filesystem claim, by its own folder
// (subPath = the drive id, a name the provider controls, never deeper), at DrivesRoot/<id> (read-write) or
// DrivesRootRO/<id> (read-only). The folders the application asked for are symlinks in an emptyDir at
// WorkDir (/work/<name>, where the original IM mounted them) pointing into those mounts, made by an init
// container that mounts no drive at all. A symlink a user creates inside a drive is then resolved by the
// container's kernel within the container's own mounts: it reaches only the drives this pod mounts, which
// are the drives the user may use. (A deeper subPath is resolved by kubelet inside the claim, which holds
// every drive: a link in drive A to drive B would be mounted.)
const (
	DrivesRoot   = "/ucloud/drives"
	DrivesRootRO = "/ucloud/drives-ro"
	WorkDir      = "/work"
	// ClaimVolume is the pod volume of the filesystem claim that holds every drive's folder.
	ClaimVolume = "ucloud-filesystem"
	// WorkVolume is the emptyDir holding the /work links.
	WorkVolume = "ucloud-work"
	// LinksContainer is the init container that makes the links.
	LinksContainer = "ucloud-links"
	// DefaultHelperImage runs the init container (it needs sh and ln only).
	DefaultHelperImage = "busybox:1.37"
)

// Folder is a UCloud path a pod mounts.
type Folder struct {
	UCloudPath string
	ReadOnly   bool
	// At is where the application sees it; empty: WorkDir/<last part of the path>, as the original names it.
	At string
}

// DriveID is the drive of a UCloud path (/<drive>/...).
func DriveID(ucloudPath string) string {
	p := strings.TrimPrefix(ucloudPath, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// Link is one folder as the application sees it: At is a symlink to Target, inside a drive's mount.
type Link struct {
	At, Target string
	Folder     Folder
}

// Layout is a pod's drive mounts and folder links.
type Layout struct {
	// Drives maps each mounted drive to its mode; a drive needed read-write and read-only is mounted twice.
	rw, ro []string
	links  []Link
}

// Plan lays out folders. Paths must be valid UCloud paths (/<numeric drive>/<name>..., no . or ..); a
// folder without At goes to /work/<last part>, and folders sharing that name get -0, -1, ... in the order
// of their UCloud paths (the original IM's rule); a whole drive is named by its id.
func Plan(folders []Folder) (Layout, error) {
	var l Layout
	names := map[string][]int{}
	for i, f := range folders {
		if !validPath(f.UCloudPath) {
			return Layout{}, fmt.Errorf("not a UCloud path: %q", f.UCloudPath)
		}
		if f.At == "" {
			names[path.Join(WorkDir, path.Base(f.UCloudPath))] = append(names[path.Join(WorkDir, path.Base(f.UCloudPath))], i)
		}
	}
	at := make([]string, len(folders))
	for name, idx := range names {
		if len(idx) == 1 {
			at[idx[0]] = name
			continue
		}
		slices.SortFunc(idx, func(a, b int) int { return strings.Compare(folders[a].UCloudPath, folders[b].UCloudPath) })
		for n, i := range idx {
			at[i] = fmt.Sprintf("%s-%d", name, n)
		}
	}
	seen := map[string]bool{}
	for i, f := range folders {
		if f.At != "" {
			at[i] = path.Clean(f.At)
		}
		if !strings.HasPrefix(at[i], WorkDir+"/") || strings.Count(at[i], "/") != 2 {
			return Layout{}, fmt.Errorf("folder %s: %q is not a name directly under %s", f.UCloudPath, at[i], WorkDir)
		}
		if seen[at[i]] {
			return Layout{}, fmt.Errorf("two folders at %s", at[i])
		}
		seen[at[i]] = true
		id := DriveID(f.UCloudPath)
		root := DrivesRoot
		if f.ReadOnly {
			root = DrivesRootRO
			if !slices.Contains(l.ro, id) {
				l.ro = append(l.ro, id)
			}
		} else if !slices.Contains(l.rw, id) {
			l.rw = append(l.rw, id)
		}
		l.links = append(l.links, Link{At: at[i], Target: root + f.UCloudPath, Folder: f})
	}
	slices.Sort(l.rw)
	slices.Sort(l.ro)
	return l, nil
}

// Links are the folders as the application sees them, in the order given to Plan.
func (l Layout) Links() []Link { return slices.Clone(l.links) }

// Drives are the mounted drives and whether each is mounted read-write (a drive needed both ways is
// read-write here).
func (l Layout) Drives() map[string]bool {
	out := map[string]bool{}
	for _, id := range l.ro {
		out[id] = false
	}
	for _, id := range l.rw {
		out[id] = true
	}
	return out
}

// ContainerPath maps a UCloud path to where the pod's application finds it: inside a folder's link when
// the path is in a mounted folder (/work/<name>/...), else inside its drive's mount; false when the pod
// does not mount the path's drive. A read-write place is preferred to a read-only one.
func (l Layout) ContainerPath(ucloudPath string) (string, bool) {
	if !validPath(ucloudPath) {
		return "", false
	}
	best, bestLen := "", -1
	for _, k := range l.links {
		p := k.Folder.UCloudPath
		if ucloudPath != p && !strings.HasPrefix(ucloudPath, p+"/") {
			continue
		}
		if n := len(p); n > bestLen || (n == bestLen && !k.Folder.ReadOnly) {
			best, bestLen = k.At+strings.TrimPrefix(ucloudPath, p), n
		}
	}
	if bestLen >= 0 {
		return best, true
	}
	id := DriveID(ucloudPath)
	switch {
	case slices.Contains(l.rw, id):
		return DrivesRoot + ucloudPath, true
	case slices.Contains(l.ro, id):
		return DrivesRootRO + ucloudPath, true
	}
	return "", false
}

// Apply adds the layout to pod's first container: the claim and the links' emptyDir as volumes, one mount
// per drive and mode, /work, and the init container making the links. Nothing is added without folders.
// Harden the pod after (it secures the init container too).
func (l Layout) Apply(pod *corev1.Pod, helperImage string) {
	if len(l.links) == 0 {
		return
	}
	if helperImage == "" {
		helperImage = DefaultHelperImage
	}
	spec := &pod.Spec
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: ClaimVolume, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: ClaimVolume}}},
		corev1.Volume{Name: WorkVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	c := &spec.Containers[0]
	for _, id := range l.rw {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: ClaimVolume, SubPath: id, MountPath: DrivesRoot + "/" + id})
	}
	for _, id := range l.ro {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: ClaimVolume, SubPath: id, MountPath: DrivesRootRO + "/" + id, ReadOnly: true})
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: WorkVolume, MountPath: WorkDir})
	// The targets and names go to sh as arguments, never into the script: no quoting to get wrong.
	args := []string{"-c", `set -e; while [ $# -gt 0 ]; do ln -sfn "$1" "$2"; shift 2; done`, "links"}
	for _, k := range l.links {
		args = append(args, k.Target, k.At)
	}
	spec.InitContainers = append(spec.InitContainers, corev1.Container{
		Name: LinksContainer, Image: helperImage, Command: []string{"sh"}, Args: args,
		VolumeMounts: []corev1.VolumeMount{{Name: WorkVolume, MountPath: WorkDir}},
		Resources:    corev1.ResourceRequirements{Requests: helperResources, Limits: helperResources},
	})
}

// helperResources bound the init container (sh and ln over a few links).
var helperResources = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")}

// validPath is /<numeric drive>[/<name>...] without empty, . or .. parts.
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) < 2 {
		return false
	}
	parts := strings.Split(p[1:], "/")
	for _, r := range parts[0] {
		if r < '0' || r > '9' {
			return false
		}
	}
	for _, s := range parts {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}

// JobFolders are the folders and files of a normal job that its pods mount: its resources and parameters
// of type file, read-only where Core says so (Core has set readOnly to "no EDIT on the drive").
func JobFolders(job ucloud.Job) []Folder {
	var out []Folder
	seen := map[string]int{}
	add := func(v ucloud.AppParameterValue) {
		if v.Type != "file" {
			return
		}
		ro := v.ReadOnly != nil && *v.ReadOnly
		if i, ok := seen[v.Path]; ok {
			// The same path twice: read-write wins, as in the original.
			out[i].ReadOnly = out[i].ReadOnly && ro
			return
		}
		seen[v.Path] = len(out)
		out = append(out, Folder{UCloudPath: v.Path, ReadOnly: ro})
	}
	for _, v := range job.Specification.Resources {
		add(v)
	}
	names := make([]string, 0, len(job.Specification.Parameters))
	for n := range job.Specification.Parameters {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		add(job.Specification.Parameters[n])
	}
	return out
}

// JobLayout is the mount layout of a normal job's pods. Its ContainerPath maps a file or directory
// parameter's UCloud path to the path the application is given.
func JobLayout(job ucloud.Job) (Layout, error) {
	return Plan(JobFolders(job))
}
