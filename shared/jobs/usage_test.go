package jobs_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
)

// job-create writes on every rank's pod how the job is charged: its project's wallet (the user's without
// one), its product's category, and the product's price in the category's unit times the replicas: 3 x 4
// cores of u1-standard-4, 2 x 1 GPU of u1-gpu-1, per minute.
func TestCreateWritesTheChargeOnEveryPod(t *testing.T) {
	r := newRig(t)
	personal := job("4301", 2, "u1-gpu-1")
	personal.Owner.Project = nil
	for _, tc := range []struct {
		job  ucloud.Job
		want usage.Charge
	}{
		{job("4300", 3, "u1-standard-4"), usage.Charge{Owner: ucloud.WalletOwner{Type: "project", ProjectID: "proj-1"},
			Category: ucloud.ProductCategoryIDV2{Name: "u1-standard", Provider: "k8s"}, Units: 12, Frequency: ucloud.FrequencyPeriodicMinute}},
		{personal, usage.Charge{Owner: ucloud.WalletOwner{Type: "user", Username: "alice#1234"},
			Category: ucloud.ProductCategoryIDV2{Name: "u1-gpu", Provider: "k8s"}, Units: 2, Frequency: ucloud.FrequencyPeriodicMinute}},
	} {
		if code, body := r.call(http.MethodPost, "", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{tc.job}}); code != 200 {
			t.Fatalf("create %s: %d %s", tc.job.ID, code, body)
		}
		pods, err := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + tc.job.ID})
		if err != nil || len(pods.Items) != tc.job.Specification.Replicas {
			t.Fatalf("job %s: %d pods, %v", tc.job.ID, len(pods.Items), err)
		}
		for _, p := range pods.Items {
			got, ok, err := usage.FromAnnotations(p.Annotations)
			if !ok || err != nil {
				t.Fatalf("pod %s has no charge: %v", p.Name, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("pod %s's charge (-want +got):\n%s", p.Name, diff)
			}
		}
	}
}
