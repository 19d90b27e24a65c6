package ucloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
)

// One message as core2 flushes it: a user, a project, a category and a wallet record (with the retired
// usage the IM asks for), in that order. Only the project reaches the handler, whole; every other record
// is read past exactly, so a project after them is read too; a record core2 does not send is an error.
func TestNotificationRecordsAreReadAsCore2WritesThem(t *testing.T) {
	var b bytes.Buffer
	u32 := func(v uint32) { _ = binary.Write(&b, binary.BigEndian, v) }
	s64 := func(v int64) { _ = binary.Write(&b, binary.BigEndian, v) }
	str := func(s string) { u32(uint32(len(s))); b.WriteString(s) }
	b.WriteByte(notifyUser)
	u32(0)
	str("alice#1")
	b.WriteByte(notifyProject)
	u32(0)
	s64(1700000000123)
	str(`{"id":"P","createdAt":1,"specification":{"title":"X","canConsumeResources":true},"status":{"members":[{"username":"alice#1","role":"PI"}],"groups":[{"id":"G","specification":{"project":"P","title":"g"},"status":{"members":["bob#2"]}}]}}`)
	b.WriteByte(notifyCategory)
	u32(0)
	str(`{"name":"u1-standard","provider":"k8s"}`)
	b.WriteByte(notifyWallet)
	u32(0)
	u32(0)
	s64(1000)
	s64(10)
	u32(3)
	s64(1700000000000)
	_ = binary.Write(&b, binary.BigEndian, uint64(0))
	b.WriteByte(notifyProject)
	u32(1)
	s64(5)
	str(`{"id":"Q"}`)
	var got []string
	var mods []int64
	err := readNotifications(context.Background(), b.Bytes(), func(_ context.Context, p Project, modified int64) error {
		got = append(got, p.ID)
		mods = append(mods, modified)
		if p.ID == "P" && (len(p.Status.Members) != 1 || p.Status.Members[0].Role != "PI" || p.Status.Groups[0].Status.Members[0] != "bob#2") {
			t.Errorf("project P read as %+v", p)
		}
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != "P" || got[1] != "Q" || mods[0] != 1700000000123 || mods[1] != 5 {
		t.Fatalf("projects %v at %v, err %v; want P then Q", got, mods, err)
	}
	if err := readNotifications(context.Background(), []byte{9, 0, 0}, func(context.Context, Project, int64) error { return nil }); err == nil {
		t.Fatal("an unknown record was accepted")
	}
	if err := readNotifications(context.Background(), []byte{notifyProject, 0, 0, 0, 1}, func(context.Context, Project, int64) error { return nil }); err == nil {
		t.Fatal("a cut-off record was accepted")
	}
}
