package deploy_test

import (
	"context"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	netclient "knative.dev/networking/pkg/client/clientset/versioned"

	"github.com/ucloud-im/knative-im/shared/appdomain"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// as is a client acting as the function's ServiceAccount.
func as(t *testing.T, fn string) (kubernetes.Interface, netclient.Interface) {
	cfg := rest.CopyConfig(env.Cluster(t).Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:ucloud-im:ucloud-im-" + fn}
	return kubernetes.NewForConfigOrDie(cfg), netclient.NewForConfigOrDie(cfg)
}

func jobService(t *testing.T, fn string) *jobs.Service {
	cs, nc := as(t, fn)
	catalog, err := jobs.LoadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Provider: "k8s", Catalog: catalog, Kube: cs, AppsDomain: "apps.example.org",
		Settings: jobs.Settings{Namespace: jobsNS},
		Apps: &appdomain.Apps{Kube: cs, Net: nc, Settings: appdomain.Settings{Provider: "k8s", AppsDomain: "apps.example.org",
			Namespace: jobsNS, AuthService: appdomain.AuthServiceName, AuthHost: "app-auth.ucloud-im.svc.cluster.local"}}}
}

// The job functions' real work, done with only their ServiceAccounts' permissions: the Roles cover what the
// code does, not just what the review above asks.
func TestJobFunctionsWorkWithTheirOwnPermissions(t *testing.T) {
	apply(t)
	ctx := context.Background()
	job := fakecore.NewJob("9901", ucloud.ResourceOwner{CreatedBy: "alice#1234"},
		ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"}, "jupyter", 2)
	create := jobService(t, "job-create")
	if errs := create.Create(ctx, []ucloud.Job{job}); errs[0] != nil {
		t.Fatalf("job-create as its ServiceAccount: %v", errs[0])
	}
	if errs := create.Create(ctx, []ucloud.Job{job}); errs[0] != nil {
		t.Fatalf("job-create retried as its ServiceAccount: %v", errs[0])
	}
	if err := kube.NamespaceReady(create.Kube, jobsNS)(ctx); err != nil {
		t.Fatalf("job-create's readiness check as its ServiceAccount: %v", err)
	}
	control := jobService(t, "job-control")
	if err := control.Extend(ctx, jobs.ExtendRequest{Job: job, RequestedTime: ucloud.SimpleDuration{Hours: 1}}); err != nil {
		t.Fatalf("job-control extend as its ServiceAccount: %v", err)
	}
	if err := control.Terminate(ctx, job); err != nil {
		t.Fatalf("job-control terminate as its ServiceAccount: %v", err)
	}
	// And job-create cannot do job-control's work.
	if err := create.Terminate(ctx, job); err == nil {
		t.Fatal("job-create could terminate a job")
	}
}
