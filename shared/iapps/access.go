package iapps

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Access decides which folders an owner may not use (drives.Access).
type Access interface {
	Denied(ctx context.Context, actor ucloud.ResourceOwner, folders []drives.Folder, fresh bool) ([]drives.Folder, error)
}

// Mounter is an App whose configuration mounts the owner's folders: they are checked when a
// configuration is validated and again every time its pod is built or reconciled.
type Mounter interface {
	// Folders are the folders cfg mounts, with the access each needs.
	Folders(cfg json.RawMessage) ([]drives.Folder, error)
	// Without is cfg without the folders the owner may no longer use, and whether the application may
	// still run with what is left.
	Without(cfg json.RawMessage, denied []drives.Folder) (json.RawMessage, bool, error)
}

// AnnotationDropped lists, on an application's pod, the folders left out of it because its owner may no
// longer use them (comma-separated UCloud paths).
const AnnotationDropped = "ucloud.dk/iapp-dropped-folders"

// errNoAccess is the refusal of a configuration naming folders the owner may not use.
func errNoAccess(denied []drives.Folder) error {
	paths := make([]string, len(denied))
	for i, f := range denied {
		paths[i] = f.UCloudPath
	}
	need := "write"
	if len(denied) > 0 && denied[0].ReadOnly {
		need = "read"
	}
	return fn.Errorf(http.StatusForbidden, "FORBIDDEN", "You do not have %s permission on %s.", need, strings.Join(paths, ", "))
}

// checkAccess refuses cfg when it names a folder the owner may not use, reading the folders' drives
// fresh from Core. A handler that mounts folders and no Access to decide is refused too (fail closed).
func checkAccess(ctx context.Context, access Access, h App, owner ucloud.ResourceOwner, cfg json.RawMessage) error {
	m, ok := h.(Mounter)
	if !ok {
		return nil
	}
	folders, err := m.Folders(cfg)
	if err != nil || len(folders) == 0 {
		return err
	}
	if access == nil {
		return fn.Errorf(http.StatusServiceUnavailable, "NO_ACCESS_CHECK", "The provider cannot check access to folders. Please try again later.")
	}
	denied, err := access.Denied(ctx, owner, folders, true)
	if err != nil {
		return fn.Wrap(err, http.StatusBadGateway, "CORE_UNAVAILABLE", "The provider could not check your access to the folders. Please try again later.")
	}
	if len(denied) > 0 {
		return errNoAccess(denied)
	}
	return nil
}

// effective is the configuration a pod is built from: the stored one without the folders the owner may
// no longer use (decided on the stored facts), the folders dropped, and whether it may run at all.
func effective(ctx context.Context, access Access, h App, rec Record) (json.RawMessage, []string, bool, error) {
	m, ok := h.(Mounter)
	if !ok {
		return rec.Config, nil, true, nil
	}
	folders, err := m.Folders(rec.Config)
	if err != nil || len(folders) == 0 {
		return rec.Config, nil, true, err
	}
	if access == nil {
		// Fail closed: nothing may be mounted without a decision.
		cfg, run, err := m.Without(rec.Config, folders)
		return cfg, paths(folders), run, err
	}
	denied, err := access.Denied(ctx, ownerOf(rec.Key), folders, false)
	if err != nil || len(denied) == 0 {
		return rec.Config, nil, true, err
	}
	cfg, run, err := m.Without(rec.Config, denied)
	return cfg, paths(denied), run, err
}

func paths(folders []drives.Folder) []string {
	out := make([]string, len(folders))
	for i, f := range folders {
		out[i] = f.UCloudPath
	}
	return out
}

func ownerOf(k Key) ucloud.ResourceOwner {
	o := ucloud.ResourceOwner{CreatedBy: k.CreatedBy}
	if k.Project != "" {
		p := k.Project
		o.Project = &p
	}
	return o
}
