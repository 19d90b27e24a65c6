package fakecore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// As core2 serves files.collections.control.retrieve to a provider: its own drives only (another
// provider's, or none, is 404, which the client reads as unknown), with every ACL entry.
func TestDriveRetrieveIsTheProvidersOwn(t *testing.T) {
	core := fakecore.Start(t)
	c, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := core.PersonalDrive("7", "alice#1")
	d.Permissions.Others = []ucloud.ResourceAclEntry{{Entity: ucloud.AclEntity{Type: ucloud.AclUser, Username: "bob#2"}, Permissions: []ucloud.Permission{"READ"}}}
	core.PutDrive(d)
	other := core.PersonalDrive("8", "alice#1")
	other.Specification.Product.Provider = "elsewhere"
	core.PutDrive(other)
	ctx := context.Background()
	got, err := c.RetrieveDrive(ctx, "7")
	if err != nil || got == nil || got.Owner.CreatedBy != "alice#1" || len(got.Permissions.Others) != 1 || got.Permissions.Others[0].Entity.Username != "bob#2" {
		t.Fatalf("drive 7: %+v %v", got, err)
	}
	for _, id := range []string{"8", "9"} {
		if got, err := c.RetrieveDrive(ctx, id); err != nil || got != nil {
			t.Errorf("drive %s: %+v %v, want unknown", id, got, err)
		}
	}
	if v := core.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

// The notification stream replays the projects changed since the time asked for and then pushes each
// change, through the IM's own client.
func TestProjectStreamReplaysAndPushes(t *testing.T) {
	c := fakecore.Start(t)
	client, err := c.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := ucloud.Project{ID: "P"}
	p.Status.Members = []ucloud.ProjectMember{{Username: "alice#1", Role: "PI"}}
	c.PutProject(p)
	c.GrantWallet("P", true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := make(chan ucloud.Project, 4)
	done := make(chan error, 1)
	go func() {
		done <- client.ProjectNotifications(ctx, 0, func(_ context.Context, p ucloud.Project, _ int64) error { seen <- p; return nil })
	}()
	if got := <-seen; got.ID != "P" || len(got.Status.Members) != 1 {
		t.Fatalf("replayed %+v", got)
	}
	p.Status.Members = append(p.Status.Members, ucloud.ProjectMember{Username: "bob#2", Role: "USER"})
	// The stream subscribes while replaying: push until the change arrives.
	for {
		c.PutProject(p)
		select {
		case got := <-seen:
			if len(got.Status.Members) == 2 {
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("stream ended with %v", err)
				}
				if v := c.Violations(); len(v) != 0 {
					t.Fatalf("violations: %v", v)
				}
				return
			}
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the change never arrived")
		}
	}
}

// As core2's session does, the stream tells a provider only of the projects with an active wallet there:
// a project without one is neither replayed nor pushed; the grant of its wallet sends it (with the wallet
// record, which the IM's client reads past), and so do its changes after that, until the wallet ends. The
// replay is strictly after the time asked for.
func TestProjectStreamSendsOnlyProjectsWithAWalletHere(t *testing.T) {
	c := fakecore.Start(t)
	client, err := c.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	project := func(id string, members ...string) ucloud.Project {
		p := ucloud.Project{ID: id}
		for _, m := range members {
			p.Status.Members = append(p.Status.Members, ucloud.ProjectMember{Username: m, Role: "USER"})
		}
		return p
	}
	c.PutProject(project("Old", "alice#1"))
	c.GrantWallet("Old", true)
	time.Sleep(5 * time.Millisecond) // Old's times are before the replay's
	from := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	c.PutProject(project("P", "alice#1"))
	c.GrantWallet("P", true)
	c.PutProject(project("Q", "mallory#6"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := make(chan ucloud.Project, 16)
	done := make(chan error, 1)
	go func() {
		done <- client.ProjectNotifications(ctx, from, func(_ context.Context, p ucloud.Project, _ int64) error { seen <- p; return nil })
	}()
	next := func() ucloud.Project {
		t.Helper()
		select {
		case p := <-seen:
			return p
		case err := <-done:
			t.Fatalf("the stream ended: %v", err)
		case <-ctx.Done():
			t.Fatal("nothing arrived")
		}
		return ucloud.Project{}
	}
	// The replay: P (its wallet's grant, then its change), never Q nor Old.
	if got := next(); got.ID != "P" {
		t.Fatalf("replayed %q first, want P", got.ID)
	}
	// Each change is sent in order: Q's change, had it been sent, would come before P's next one. The stream
	// subscribes while it replays: push until P's change arrives.
	for marker := 1; ; marker++ {
		c.PutProject(project("Q", "mallory#6", "eve#7"))
		want := fmt.Sprint("bob#", marker)
		c.PutProject(project("P", "alice#1", want))
		arrived := false
		for !arrived {
			select {
			case got := <-seen:
				if got.ID != "P" {
					t.Fatalf("the stream sent %q, which has no wallet here", got.ID)
				}
				arrived = len(got.Status.Members) == 2 && got.Status.Members[1].Username == want
				continue
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				t.Fatal("P's change never arrived")
			}
			break
		}
		if arrived {
			break
		}
	}
	c.GrantWallet("Q", true)
	if got := next(); got.ID != "Q" || len(got.Status.Members) != 2 {
		t.Fatalf("after Q's grant the stream sent %+v, want Q as it is", got)
	}
	c.GrantWallet("Q", false)
	c.PutProject(project("Q", "mallory#6"))
	c.PutProject(project("P", "alice#1"))
	if got := next(); got.ID != "P" {
		t.Fatalf("the stream sent %q after its wallet ended", got.ID)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v (a record it could not read?)", err)
	}
	if v := c.Violations(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
}
