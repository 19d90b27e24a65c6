package drives_test

import (
	"testing"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

func user(name string) ucloud.ResourceOwner { return ucloud.ResourceOwner{CreatedBy: name} }

func acl(entries ...ucloud.ResourceAclEntry) *ucloud.ResourcePermissions {
	return &ucloud.ResourcePermissions{Myself: []ucloud.Permission{"READ", "PROVIDER"}, Others: entries}
}

func userEntry(name string, perms ...ucloud.Permission) ucloud.ResourceAclEntry {
	return ucloud.ResourceAclEntry{Entity: ucloud.AclEntity{Type: ucloud.AclUser, Username: name}, Permissions: perms}
}

func groupEntry(project, group string, perms ...ucloud.Permission) ucloud.ResourceAclEntry {
	return ucloud.ResourceAclEntry{Entity: ucloud.AclEntity{Type: ucloud.AclProjectGroup, ProjectID: project, Group: group}, Permissions: perms}
}

// project P: alice PI, adam ADMIN, bob and carol and dave USERs; group G holds bob, group H holds dave.
func projectP() *ucloud.Project {
	p := &ucloud.Project{ID: "P"}
	p.Status.Members = []ucloud.ProjectMember{{Username: "alice#1", Role: "PI"}, {Username: "adam#2", Role: "ADMIN"}, {Username: "bob#3", Role: "USER"}, {Username: "carol#4", Role: "USER"}, {Username: "dave#5", Role: "USER"}}
	g := ucloud.ProjectGroup{ID: "G"}
	g.Status.Members = []string{"bob#3"}
	h := ucloud.ProjectGroup{ID: "H"}
	h.Status.Members = []string{"dave#5"}
	p.Status.Groups = []ucloud.ProjectGroup{g, h}
	return p
}

// TestCanUseTable is the original's DriveCanUse over owners, projects, roles, groups and ACL entries.
func TestCanUseTable(t *testing.T) {
	proj := "P"
	personal := &ucloud.Drive{ID: "1", Owner: ucloud.ResourceOwner{CreatedBy: "owner#9"},
		Permissions: acl(userEntry("reader#7", "READ"), userEntry("editor#8", "READ", "EDIT"))}
	projectDrive := &ucloud.Drive{ID: "2", Owner: ucloud.ResourceOwner{CreatedBy: "carol#4", Project: &proj},
		Permissions: acl(groupEntry("P", "G", "READ", "EDIT"), groupEntry("P", "H", "READ"), userEntry("eve#6", "READ", "EDIT"))}
	other := "Q"
	otherProjectDrive := &ucloud.Drive{ID: "3", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1", Project: &other}}
	cases := []struct {
		name     string
		actor    ucloud.ResourceOwner
		drive    *ucloud.Drive
		project  *ucloud.Project
		readOnly bool
		want     bool
	}{
		{"personal owner read-write", user("owner#9"), personal, nil, false, true},
		{"personal owner read-only", user("owner#9"), personal, nil, true, true},
		{"stranger read-only", user("mallory#0"), personal, nil, true, false},
		{"stranger read-write", user("mallory#0"), personal, nil, false, false},
		{"user READ entry read-only", user("reader#7"), personal, nil, true, true},
		{"user READ-only entry asking read-write", user("reader#7"), personal, nil, false, false},
		{"user EDIT entry read-write", user("editor#8"), personal, nil, false, true},
		{"project PI", user("alice#1"), projectDrive, projectP(), false, true},
		{"project ADMIN", user("adam#2"), projectDrive, projectP(), false, true},
		{"drive's creator, plain member", user("carol#4"), projectDrive, projectP(), false, true},
		{"plain member in a group with EDIT", user("bob#3"), projectDrive, projectP(), false, true},
		{"plain member in a group with READ, read-only", user("dave#5"), projectDrive, projectP(), true, true},
		{"plain member in a group with READ, read-write", user("dave#5"), projectDrive, projectP(), false, false},
		{"plain member with no group ACL", user("carol#4"), &ucloud.Drive{ID: "4", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1", Project: &proj}, Permissions: projectDrive.Permissions}, projectP(), true, false},
		{"user entry, not a member of the project", user("eve#6"), projectDrive, projectP(), false, false},
		{"stranger on a project drive", user("mallory#0"), projectDrive, projectP(), true, false},
		{"unknown drive", user("owner#9"), nil, nil, true, false},
		{"unknown project", user("alice#1"), otherProjectDrive, nil, true, false},
		{"project passed is another one", user("alice#1"), otherProjectDrive, projectP(), true, false},
		{"the project itself", ucloud.ResourceOwner{Project: &proj}, projectDrive, projectP(), false, true},
		{"another project itself", ucloud.ResourceOwner{Project: &other}, projectDrive, projectP(), true, false},
		{"empty actor on a personal drive", ucloud.ResourceOwner{}, &ucloud.Drive{ID: "5", Owner: ucloud.ResourceOwner{}}, nil, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := drives.CanUse(tc.actor, tc.drive, tc.project, tc.readOnly); got != tc.want {
				t.Errorf("CanUse(%+v, drive %v, readOnly %v) = %v, want %v", tc.actor, tc.drive != nil, tc.readOnly, got, tc.want)
			}
		})
	}
}
