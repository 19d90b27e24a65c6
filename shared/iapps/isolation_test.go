package iapps_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/kube"
)

// TestApplicationsAreFencedAndHardened: an update starts each application's pod, in a namespace enforcing
// Pod Security baseline (as ucloud-jobs does), with its NetworkPolicy (the terminal had none) fencing
// egress, and a container that cannot escalate or use raw sockets.
func TestApplicationsAreFencedAndHardened(t *testing.T) {
	r := newRig(t)
	for app, cfg := range map[string]json.RawMessage{"terminal": json.RawMessage(`{"folders":["/7/Home"]}`), "syncthing": syncthingConfig("laptop")} {
		t.Run(app, func(t *testing.T) {
			owner := alice()
			owner.CreatedBy = app + "-owner#1"
			r.core.PersonalDrive(map[string]string{"terminal": "7", "syncthing": "123"}[app], owner.CreatedBy)
			code, body := r.call(app, iapps.OpUpdate, iapps.UpdateRequest{Principal: owner, Config: cfg})
			if code != 200 {
				t.Fatalf("update: %d %s", code, body)
			}
			pods, err := env.Clientset.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelRank + "=0"})
			if err != nil {
				t.Fatal(err)
			}
			var pod *corev1.Pod
			for i := range pods.Items {
				if pods.Items[i].Annotations[kube.AnnotationIAppName] == app {
					pod = &pods.Items[i]
				}
			}
			if pod == nil {
				t.Fatalf("no %s pod", app)
			}
			sc := pod.Spec.Containers[0].SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
				!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || slices.Contains(sc.Capabilities.Add, "NET_RAW") {
				t.Errorf("container security context %+v", sc)
			}
			if psc := pod.Spec.SecurityContext; psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context %+v, want RuntimeDefault seccomp", psc)
			}
			jobID := pod.Labels[kube.LabelJobID]
			pol, err := env.Clientset.NetworkingV1().NetworkPolicies(r.ns).Get(context.Background(), kube.PolicyName(jobID), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s has no NetworkPolicy: %v", app, err)
			}
			if !slices.Contains(pol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(pol.Spec.Egress) == 0 ||
				pol.Spec.PodSelector.MatchLabels[kube.LabelJobID] != jobID || len(pol.OwnerReferences) != 1 || pol.OwnerReferences[0].UID != pod.UID {
				t.Errorf("policy %+v: want egress fenced, selecting job %s, owned by its pod", pol.Spec, jobID)
			}
		})
	}
}
