package drives_test

import (
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// builtPods are the pods of every builder in the project (Syncthing, the terminal, normal jobs: the only
// code that makes pods), each given the folders.
func builtPods(t *testing.T, folders []string, readOnly map[string]bool) map[string]*corev1.Pod {
	t.Helper()
	out := map[string]*corev1.Pod{}
	job := iapps.Job{ID: "77", Key: iapps.Key{App: "x", CreatedBy: "alice#1"}, ETag: "e", Namespace: "jobs"}
	var sc iapps.SyncthingConfig
	sc.Devices = []iapps.SyncthingDevice{{DeviceID: "AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH"}}
	for i, f := range folders {
		sc.Folders = append(sc.Folders, iapps.SyncthingFolder{ID: "f" + string(rune('a'+i)), UCloudPath: f})
	}
	raw, _ := json.Marshal(sc)
	valid, err := iapps.Syncthing{}.Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := iapps.Syncthing{}.MakeObjects(job, valid)
	if err != nil {
		t.Fatal(err)
	}
	out["syncthing"] = objs.Pod
	raw, _ = json.Marshal(iapps.TerminalConfig{Folders: folders})
	if valid, err = (iapps.Terminal{}).Validate(raw); err != nil {
		t.Fatal(err)
	}
	if objs, err = (iapps.Terminal{}).MakeObjects(job, valid); err != nil {
		t.Fatal(err)
	}
	out["terminal"] = objs.Pod
	j := ucloud.Job{ID: "78", Specification: ucloud.JobSpecification{Replicas: 2, Parameters: map[string]ucloud.AppParameterValue{}}}
	for i, f := range folders {
		v := ucloud.AppParameterValue{Type: "file", Path: f, ReadOnly: ptr.To(readOnly[f])}
		if i%2 == 0 {
			j.Specification.Resources = append(j.Specification.Resources, v)
		} else {
			j.Specification.Parameters["p"+string(rune('a'+i))] = v
		}
	}
	jo, err := jobs.MakeObjects(j, jobs.Product{CPU: 1, MemoryGiB: 1}, jobs.Application{Image: "alpine:3"}, jobs.Settings{Namespace: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	for rank, p := range jo.Pods {
		out["job rank "+string(rune('0'+rank))] = p
	}
	return out
}

// No pod the project builds mounts the filesystem claim deeper than a drive's own folder, for folders
// deep inside drives, whole drives, the same name twice and read-only ones; no init container mounts it.
func TestNoBuilderMountsDeeperThanADrive(t *testing.T) {
	folders := []string{"/1/Home/Sync", "/2", "/3/a/b/c/Sync", "/4/Data/x"}
	readOnly := map[string]bool{"/4/Data/x": true}
	for name, pod := range builtPods(t, folders, readOnly) {
		var got []string
		for _, c := range pod.Spec.InitContainers {
			for _, m := range c.VolumeMounts {
				if m.Name == drives.ClaimVolume {
					t.Errorf("%s: init container %s mounts the claim at %s", name, c.Name, m.MountPath)
				}
			}
		}
		for _, c := range pod.Spec.Containers {
			for _, m := range c.VolumeMounts {
				if m.Name != drives.ClaimVolume {
					continue
				}
				if m.SubPath == "" || strings.ContainsAny(m.SubPath, "/.") || m.SubPathExpr != "" {
					t.Errorf("%s: claim mounted with subPath %q (expr %q): not a drive's own folder", name, m.SubPath, m.SubPathExpr)
				}
				root := drives.DrivesRoot
				if m.ReadOnly {
					root = drives.DrivesRootRO
				}
				if m.MountPath != root+"/"+m.SubPath {
					t.Errorf("%s: drive %s mounted at %s (read-only %v)", name, m.SubPath, m.MountPath, m.ReadOnly)
				}
				got = append(got, m.SubPath)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, []string{"1", "2", "3", "4"}) {
			t.Errorf("%s: drives mounted %v, want each of 1-4 once", name, got)
		}
	}
}

// mount is one bind mount as kubelet would set it up: a host directory at a container path.
type mount struct{ at, host string }

// kubeletSubPath resolves a volume's subPath as upstream kubelet does (subpath_linux.go doBindSubPath:
// EvalSymlinks, then the result must stay inside the volume root).
func kubeletSubPath(volumeRoot, subPath string) (string, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(volumeRoot, subPath))
	if err != nil {
		return "", err
	}
	if p != volumeRoot && !strings.HasPrefix(p, volumeRoot+string(filepath.Separator)) {
		return "", errors.New("subPath escapes the volume")
	}
	return p, nil
}

// container is a container's view: its mounts over an otherwise empty root (what the image holds is
// irrelevant: no drive is in it). Paths resolve as the kernel resolves them inside the container's mount
// namespace: symlinks are read where they lie and followed from the container's root or directory.
type container struct {
	mounts []mount
	links  map[string]string // symlinks the init container made in the emptyDir at /work
}

// host maps a symlink-free container path to the host path behind it ("" when nothing is there).
func (c container) host(p string) string {
	best := -1
	for i, m := range c.mounts {
		if (p == m.at || strings.HasPrefix(p, m.at+"/")) && (best < 0 || len(m.at) > len(c.mounts[best].at)) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return c.mounts[best].host + strings.TrimPrefix(p, c.mounts[best].at)
}

// above says whether p is a directory above a mount point or link.
func (c container) above(p string) bool {
	for _, m := range c.mounts {
		if strings.HasPrefix(m.at, p+"/") {
			return true
		}
	}
	for at := range c.links {
		if strings.HasPrefix(at, p+"/") {
			return true
		}
	}
	return false
}

// resolve follows p through symlinks inside the container: the host path it reaches, or "" if none.
func (c container) resolve(p string) string {
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		next := path.Join(cur, parts[0])
		parts = parts[1:]
		target, isLink := c.links[next]
		if !isLink {
			h := c.host(next)
			if h == "" && c.above(next) {
				cur = next // a directory holding mount points or links (/ucloud, /work)
				continue
			}
			if h == "" {
				return ""
			}
			fi, err := os.Lstat(h)
			if err != nil {
				return ""
			}
			if fi.Mode()&os.ModeSymlink == 0 {
				cur = next
				continue
			}
			target, _ = os.Readlink(h)
		}
		if hops++; hops > 40 {
			return ""
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		parts = append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), parts...)
		cur = "/"
	}
	if cur == "/" || (c.host(cur) == "" && c.above(cur)) {
		return "" // the container's own directories hold no drive
	}
	return c.host(cur)
}

// reachable is every host path a process in the container can open through its mounts and links.
func (c container) reachable() []string {
	var out []string
	seen := map[string]bool{}
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		h := c.resolve(p)
		if h == "" || depth > 12 {
			return
		}
		out = append(out, h)
		if seen[h] {
			return
		}
		seen[h] = true
		entries, err := os.ReadDir(h)
		if err != nil {
			return
		}
		for _, e := range entries {
			walk(path.Join(p, e.Name()), depth+1)
		}
	}
	for _, m := range c.mounts {
		walk(m.at, 0)
	}
	for at := range c.links {
		walk(at, 0)
	}
	return out
}

// A user with drive 1 plants symlinks in it towards drive 2 (relative, absolute as the container sees it,
// and one that is itself the configured folder), then asks every builder for folders in drive 1. Nothing in
// drive 2 can be reached through any mount the project builds; with the old layout (subPath
// "1/Sync/escape"), kubelet's own rule would have mounted drive 2.
//
// What this shows without a kubelet: the pods' mounts (the claim by drive folder only; the links in an
// emptyDir) run through a model of kubelet's subPath rule (EvalSymlinks within the volume) on a real
// directory tree with real symlinks, and a model of the kernel's path resolution inside the container's
// mount namespace. What it cannot show: that a real kubelet, container runtime and kernel behave as the
// models do, or races (a drive folder swapped for a symlink while kubelet mounts it: the drive folders are
// the provider's, which users cannot replace).
func TestSymlinkIntoAnotherDriveIsNotReachable(t *testing.T) {
	claim := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(claim, "1", "Sync", "own"), 0o755))
	must(os.MkdirAll(filepath.Join(claim, "2", "Secret"), 0o755))
	must(os.WriteFile(filepath.Join(claim, "2", "Secret", "key"), []byte("drive 2"), 0o644))
	must(os.WriteFile(filepath.Join(claim, "1", "Sync", "own", "mine"), []byte("drive 1"), 0o644))
	must(os.Symlink("../../2", filepath.Join(claim, "1", "Sync", "escape")))
	must(os.Symlink("/ucloud/drives/2", filepath.Join(claim, "1", "Sync", "abs")))
	must(os.Symlink("../../../../../..", filepath.Join(claim, "1", "Sync", "up")))
	must(os.Symlink("own/mine", filepath.Join(claim, "1", "Sync", "inside")))
	drive2 := filepath.Join(claim, "2")

	// The threat, with kubelet's rule: the old layout's subPath reaches drive 2.
	if p, err := kubeletSubPath(claim, "1/Sync/escape"); err != nil || p != drive2 {
		t.Fatalf("old layout: kubelet resolves subPath 1/Sync/escape to %q (%v); the model should reach drive 2", p, err)
	}
	old := container{mounts: []mount{{at: "/work/escape", host: drive2}}}
	if !slices.Contains(old.reachable(), filepath.Join(drive2, "Secret", "key")) {
		t.Fatal("the model does not see drive 2 through the old layout's mount")
	}

	for name, pod := range builtPods(t, []string{"/1/Sync", "/1/Sync/escape"}, nil) {
		var c container
		c.links = map[string]string{}
		for _, m := range pod.Spec.Containers[0].VolumeMounts {
			if m.Name != drives.ClaimVolume {
				continue
			}
			h, err := kubeletSubPath(claim, m.SubPath)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			c.mounts = append(c.mounts, mount{at: m.MountPath, host: h})
		}
		args := pod.Spec.InitContainers[0].Args
		for i := 3; i+1 < len(args); i += 2 {
			c.links[args[i+1]] = args[i]
		}
		if got := c.resolve("/work/Sync/inside"); got != filepath.Join(claim, "1", "Sync", "own", "mine") {
			t.Errorf("%s: a link within drive 1 resolves to %q; the model must follow links that stay inside", name, got)
		}
		for _, p := range []string{"/work/escape", "/work/Sync/escape/Secret/key", "/work/Sync/abs/Secret", "/work/Sync/up/2", "/ucloud/drives/2"} {
			if got := c.resolve(p); got != "" {
				t.Errorf("%s: %s reaches %s", name, p, got)
			}
		}
		for _, h := range c.reachable() {
			if h == drive2 || strings.HasPrefix(h, drive2+"/") {
				t.Errorf("%s: drive 2 reachable: %s", name, h)
			}
		}
	}
}
