package walkthrough

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// giveDrive has the fake Core hold a personal drive of the provider owned by owner.
func (w *walker) giveDrive(ctx context.Context, id, owner string) error {
	d := ucloud.Drive{ID: id, Owner: ucloud.ResourceOwner{CreatedBy: owner}, Permissions: &ucloud.ResourcePermissions{Myself: []ucloud.Permission{}},
		Specification: ucloud.DriveSpecification{Title: "Home", Product: ucloud.ProductReference{ID: "storage", Category: "storage", Provider: w.Provider}}}
	raw, _ := json.Marshal(d)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, w.CoreURL+fakecore.InspectPrefix+"drives", bytes.NewReader(raw))
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("give drive %s to %s in the fake Core: %w", id, owner, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("give drive %s to %s in the fake Core: %s", id, owner, resp.Status)
	}
	return nil
}

// podShowsFolders checks that the job's pod mounts the walkthrough's two folders as the drives issue
// says: each drive whole at its own mount (subPath = the drive id), the read-only one read-only, and the
// folders linked to /work/<name> by the links init container.
func podShowsFolders(p corev1.Pod, say func(string, ...any)) error {
	c := p.Spec.Containers[0]
	want := []corev1.VolumeMount{
		{Name: drives.ClaimVolume, SubPath: "124", MountPath: drives.DrivesRoot + "/124"},
		{Name: drives.ClaimVolume, SubPath: "125", MountPath: drives.DrivesRootRO + "/125", ReadOnly: true},
	}
	for _, m := range want {
		if !slices.Contains(c.VolumeMounts, m) {
			return fmt.Errorf("the pod does not mount drive %s at %s (read-only %v): %+v", m.SubPath, m.MountPath, m.ReadOnly, c.VolumeMounts)
		}
		say("its container mounts drive %s at %s (read-only %v)", m.SubPath, m.MountPath, m.ReadOnly)
	}
	for _, ic := range p.Spec.InitContainers {
		if ic.Name == drives.LinksContainer {
			if !slices.Contains(ic.Args, "/work/Results") || !slices.Contains(ic.Args, "/work/Reference") {
				return fmt.Errorf("the links container does not link /work/Results and /work/Reference: %q", ic.Args)
			}
			say("init container %s links %q", ic.Name, ic.Args[3:])
			return nil
		}
	}
	return fmt.Errorf("the pod has no %s init container", drives.LinksContainer)
}
