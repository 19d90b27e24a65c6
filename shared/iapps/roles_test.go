package iapps_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// The four operations, each as its own function's database role (the rig runs them all as config-update):
// update registers and stores, reset swaps, restart deletes the pod, retrieve reads; and each role is
// refused what belongs to another (restart and retrieve cannot change a record).
func TestEachOperationRunsAsItsOwnRole(t *testing.T) {
	sdb := storetest.New(t, env.Database(t))
	core := fakecore.Start(t)
	client, err := core.Client(ucloud.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	env.FilesystemClaim(t, ns, iapps.FilesystemVolume)
	core.PersonalDrive("123", alice().CreatedBy)
	as := func(fn string) *iapps.Service {
		pool := sdb.Open(t, fn).Pool
		return &iapps.Service{Provider: "k8s", Registry: iapps.BuiltinApps(iapps.AppEnv{}), Store: &iapps.ConfigStore{Pool: pool},
			Core: client, Kube: env.Clientset, Namespace: ns, Access: &drives.Access{Store: &drives.Store{Pool: pool}, Core: client}}
	}
	update, reset, restart, retrieve := as(store.FnConfigUpdate), as(store.FnConfigReset), as(store.FnConfigRestart), as(store.FnConfigRetrieve)
	ctx := context.Background()
	if err := update.Update(ctx, "syncthing", iapps.UpdateRequest{Principal: alice(), Config: syncthingConfig("A")}); err != nil {
		t.Fatalf("update as config-update: %v", err)
	}
	before, err := retrieve.Retrieve(ctx, "syncthing", iapps.RetrieveRequest{ProductID: "syncthing", Principal: alice()})
	if err != nil || before.ETag == iapps.InitialETag {
		t.Fatalf("retrieve as config-retrieve: %+v, %v", before, err)
	}
	if err := reset.Reset(ctx, "syncthing", iapps.ResetRequest{Principal: alice(), ExpectedETag: &before.ETag}); err != nil {
		t.Fatalf("reset as config-reset: %v", err)
	}
	after, err := retrieve.Retrieve(ctx, "syncthing", iapps.RetrieveRequest{ProductID: "syncthing", Principal: alice()})
	if err != nil || after.ETag == before.ETag {
		t.Fatalf("retrieve after reset: %+v, %v (ETag before %s)", after, err, before.ETag)
	}
	rec, err := restart.Store.Get(ctx, iapps.KeyOf("syncthing", alice()))
	if err != nil {
		t.Fatal(err)
	}
	if err := restart.Restart(ctx, "syncthing", iapps.RestartRequest{Principal: alice()}); err != nil {
		t.Fatalf("restart as config-restart: %v", err)
	}
	if p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, kube.PodName(rec.JobID, 0), metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil && p.Annotations[kube.AnnotationIAppETag] == rec.ETag {
		t.Fatal("restart left the pod in place")
	}
	// An attacker holding restart's or retrieve's password: no write reaches the record.
	for fn, s := range map[string]*iapps.Service{store.FnConfigRestart: restart, store.FnConfigRetrieve: retrieve} {
		if _, err := s.Store.CompareAndSwap(ctx, rec.Key, json.RawMessage(`{"devices":[],"folders":[]}`), nil); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s swapped a configuration: %v", fn, err)
		}
		if err := s.Store.Delete(ctx, rec.Key); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s deleted a configuration: %v", fn, err)
		}
	}
	if got, _ := retrieve.Retrieve(ctx, "syncthing", iapps.RetrieveRequest{ProductID: "syncthing", Principal: alice()}); got.ETag != after.ETag {
		t.Fatalf("the record changed under the refused writes: %s, want %s", got.ETag, after.ETag)
	}
}
