package fakecore

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// driveBook is what the fake knows of drives and projects: set by tests (PutDrive, PutProject, ...) or
// through the inspect endpoints, served as core2 serves them to a provider.
type driveBook struct {
	mu       sync.Mutex
	drives   map[string]ucloud.Drive
	projects map[string]ucloud.Project
	modified map[string]int64
	// walletAt is when a project's wallet at this provider last became active (ms); a project without one
	// has no active wallet here, and core2 tells the provider nothing of it.
	walletAt map[string]int64
	// watchers get every project change and wallet grant (the provider notification stream).
	watchers map[chan projectChange]bool
}

// projectChange is what a notification stream hears: a project changed, or its wallet here became active.
type projectChange struct {
	id     string
	wallet bool
}

func (b *driveBook) init() {
	if b.drives == nil {
		b.drives, b.projects, b.watchers = map[string]ucloud.Drive{}, map[string]ucloud.Project{}, map[chan projectChange]bool{}
		b.modified, b.walletAt = map[string]int64{}, map[string]int64{}
	}
}

// tellLocked passes a change to every connected notification stream (b.mu held).
func (b *driveBook) tellLocked(ch projectChange) {
	for w := range b.watchers {
		select {
		case w <- ch:
		default:
		}
	}
}

// PutDrive creates or replaces a drive (its ACL included: an ACL change in Core is this).
func (c *Core) PutDrive(d ucloud.Drive) {
	b := &c.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	b.drives[d.ID] = d
}

// SetDriveACL replaces a drive's ACL entries for others (Core's files.collections.updateAcl).
func (c *Core) SetDriveACL(id string, others []ucloud.ResourceAclEntry) {
	b := &c.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	d, ok := b.drives[id]
	if !ok {
		return
	}
	perms := ucloud.ResourcePermissions{Myself: []ucloud.Permission{"READ", "PROVIDER"}, Others: slices.Clone(others)}
	d.Permissions = &perms
	b.drives[id] = d
}

// DeleteDrive removes a drive.
func (c *Core) DeleteDrive(id string) {
	b := &c.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	delete(b.drives, id)
}

// PutProject creates or replaces a project with its members and groups, and tells every connected provider
// notification stream, as core2 does on a change of members, roles or groups: a stream sends it only while
// the project has an active wallet at this provider (GrantWallet).
func (c *Core) PutProject(p ucloud.Project) {
	b := &c.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	b.projects[p.ID] = p
	b.modified[p.ID] = time.Now().UnixMilli()
	b.tellLocked(projectChange{id: p.ID})
}

// GrantWallet gives a project an active wallet at this provider (an allocation Core granted), or takes it
// away (the allocation ended). A grant is pushed as core2 pushes a significant wallet update: the wallet
// record, with the project's record first when the stream has not sent that project yet.
func (c *Core) GrantWallet(projectID string, active bool) {
	b := &c.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	if !active {
		delete(b.walletAt, projectID)
		return
	}
	b.walletAt[projectID] = time.Now().UnixMilli()
	b.tellLocked(projectChange{id: projectID, wallet: true})
}

// Drives lists the drives the fake holds.
func (c *Core) Drives() []ucloud.Drive {
	b := &c.book
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ucloud.Drive
	for _, d := range b.drives {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b ucloud.Drive) int { return cmpString(a.ID, b.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// retrieveDrive is files.collections.control.retrieve: one of this provider's drives; its ACL for others
// only with includeOthers (core2's ResourceFlags); 404 for a drive that is not there or not this provider's.
func (c *Core) retrieveDrive(w http.ResponseWriter, r *http.Request) {
	q, id, ok := c.retrieveQuery(w, r, "id", "includeOthers", "includeUpdates", "includeSupport", "includeProduct")
	if !ok {
		return
	}
	b := &c.book
	b.mu.Lock()
	b.init()
	d, ok := b.drives[id]
	b.mu.Unlock()
	if !ok || d.Specification.Product.Provider != c.o.ProviderID {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	if d.Permissions == nil {
		d.Permissions = &ucloud.ResourcePermissions{}
	}
	perms := *d.Permissions
	perms.Myself = []ucloud.Permission{"READ", "PROVIDER"}
	if q.Get("includeOthers") != "true" {
		perms.Others = nil
	}
	d.Permissions = &perms
	writeJSON(w, d)
}

// driveSetup serves the inspect endpoints for drives and projects (outside tests, make run): PUT a drive
// or a project (JSON, as Core holds it; the project gets an active wallet here), DELETE a drive (?id=), GET
// the drives.
func (c *Core) driveSetup(mux *http.ServeMux) {
	mux.HandleFunc("GET "+InspectPrefix+"drives", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Drives()) })
	mux.HandleFunc("PUT "+InspectPrefix+"drives", func(w http.ResponseWriter, r *http.Request) {
		var d ucloud.Drive
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil || d.ID == "" {
			writeError(w, http.StatusBadRequest, "Bad request: a drive with an id")
			return
		}
		c.PutDrive(d)
		writeJSON(w, struct{}{})
	})
	mux.HandleFunc("DELETE "+InspectPrefix+"drives", func(w http.ResponseWriter, r *http.Request) {
		c.DeleteDrive(r.URL.Query().Get("id"))
		writeJSON(w, struct{}{})
	})
	mux.HandleFunc("PUT "+InspectPrefix+"projects", func(w http.ResponseWriter, r *http.Request) {
		var p ucloud.Project
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.ID == "" {
			writeError(w, http.StatusBadRequest, "Bad request: a project with an id")
			return
		}
		// A project put by hand is one that uses this provider: it gets an active wallet here.
		c.PutProject(p)
		c.GrantWallet(p.ID, true)
		writeJSON(w, struct{}{})
	})
}

// PersonalDrive puts a personal drive of this provider owned by owner, with no ACL entries for others, and
// returns it.
func (c *Core) PersonalDrive(id, owner string) ucloud.Drive {
	d := ucloud.Drive{ID: id, Owner: ucloud.ResourceOwner{CreatedBy: owner},
		Permissions:   &ucloud.ResourcePermissions{Myself: []ucloud.Permission{}},
		Specification: ucloud.DriveSpecification{Title: "Home", Product: ucloud.ProductReference{ID: "storage", Category: "storage", Provider: c.o.ProviderID}}}
	c.PutDrive(d)
	return d
}
