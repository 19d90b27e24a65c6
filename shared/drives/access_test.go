package drives_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// coreDrive is a drive of provider k8s as the fake Core holds it.
func coreDrive(d *ucloud.Drive) ucloud.Drive {
	out := *d
	out.Specification = ucloud.DriveSpecification{Title: "d" + d.ID, Product: ucloud.ProductReference{ID: "storage", Category: "storage", Provider: "k8s"}}
	return out
}

// accessRig is the monitor's view: drives.Access on the monitor's database role, reading drives from a
// strict fake Core and following its project notifications.
func accessRig(t *testing.T) (*fakecore.Core, *drives.Access) {
	t.Helper()
	sdb := storetest.New(t, env.Database(t))
	core := fakecore.Start(t)
	client, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := &drives.Access{Store: &drives.Store{Pool: sdb.Open(t, store.FnMonitor).Pool}, Core: client, Stream: client}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.FollowProjects(ctx, fn.NewLogger(io.Discard, "test", "info")); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return core, a
}

// The rule's table again, end to end: the drives and project live in the strict fake Core, the provider
// reads drives with files.collections.control.retrieve and the project from Core's notification stream
// into PostgreSQL, and decides. Every row gives the original's answer.
func TestAccessTableThroughCoreAndPostgres(t *testing.T) {
	core, access := accessRig(t)
	ctx := context.Background()
	proj := "P"
	core.PutProject(*projectP())
	core.GrantWallet("P", true) // its drives are at this provider: so is an allocation of it
	for _, d := range []*ucloud.Drive{
		{ID: "1", Owner: ucloud.ResourceOwner{CreatedBy: "owner#9"}, Permissions: acl(userEntry("reader#7", "READ"), userEntry("editor#8", "READ", "EDIT"))},
		{ID: "2", Owner: ucloud.ResourceOwner{CreatedBy: "carol#4", Project: &proj}, Permissions: acl(groupEntry("P", "G", "READ", "EDIT"), groupEntry("P", "H", "READ"))},
		{ID: "4", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1", Project: &proj}, Permissions: acl()},
		{ID: "3", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1", Project: ptrTo("Q")}},
	} {
		core.PutDrive(coreDrive(d))
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if p, err := access.Store.Project(ctx, "P"); err != nil || p == nil {
			return fmt.Errorf("project P not stored yet (%v)", err)
		}
		return nil
	})
	rows := []struct {
		name, user, path string
		readOnly, want   bool
	}{
		{"personal owner", "owner#9", "/1/x", false, true},
		{"stranger", "mallory#0", "/1/x", true, false},
		{"READ entry, read-only", "reader#7", "/1/x", true, true},
		{"READ-only entry asking read-write", "reader#7", "/1/x", false, false},
		{"EDIT entry", "editor#8", "/1/x", false, true},
		{"project PI", "alice#1", "/2/x", false, true},
		{"project ADMIN", "adam#2", "/2/x", false, true},
		{"drive's creator", "carol#4", "/2/x", false, true},
		{"member with a group ACL (EDIT)", "bob#3", "/2/x", false, true},
		{"member with a READ group ACL, read-write", "dave#5", "/2/x", false, false},
		{"member with a READ group ACL, read-only", "dave#5", "/2/x", true, true},
		{"member without a group ACL", "carol#4", "/4/x", true, false},
		{"PI on a drive without ACL", "alice#1", "/4/x", false, true},
		{"unknown drive", "owner#9", "/99/x", true, false},
		{"unknown project", "alice#1", "/3/x", true, false},
	}
	for _, fresh := range []bool{true, false} {
		for _, row := range rows {
			f := drives.Folder{UCloudPath: row.path, ReadOnly: row.readOnly}
			denied, err := access.Denied(ctx, user(row.user), []drives.Folder{f}, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(denied) == 0; got != row.want {
				t.Errorf("%s (fresh %v): allowed %v, want %v", row.name, fresh, got, row.want)
			}
		}
	}
	if v := core.Violations(); len(v) != 0 {
		t.Errorf("calls off core2's wire format: %v", v)
	}

	// Changes in Core: bob leaves group G (Core pushes the project), reader#7 loses the ACL entry (Core
	// pushes nothing: the next apply reads the drive again).
	p := projectP()
	p.Status.Groups[0].Status.Members = nil
	core.PutProject(*p)
	core.SetDriveACL("1", []ucloud.ResourceAclEntry{userEntry("editor#8", "READ", "EDIT")})
	envtest.Eventually(t, 10*time.Second, func() error {
		denied, err := access.Denied(ctx, user("bob#3"), []drives.Folder{{UCloudPath: "/2/x"}}, false)
		if err != nil || len(denied) == 0 {
			return fmt.Errorf("bob still allowed after leaving the group (%v)", err)
		}
		return nil
	})
	if denied, _ := access.Denied(ctx, user("reader#7"), []drives.Folder{{UCloudPath: "/1/x", ReadOnly: true}}, true); len(denied) != 1 {
		t.Errorf("reader#7 still allowed after the ACL entry was removed")
	}
	core.DeleteDrive("4")
	if denied, _ := access.Denied(ctx, user("alice#1"), []drives.Folder{{UCloudPath: "/4/x"}}, true); len(denied) != 1 {
		t.Errorf("a drive Core deleted is still allowed")
	}
}

func ptrTo(s string) *string { return &s }
