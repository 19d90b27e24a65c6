package localenv

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The monitor's event identity where no Knative runs (make run, the e2e tests, the benchmarks): the monitor
// sends straight to status-report with tokens of the ServiceAccount ucloud-im-monitor that it asks the
// apiserver's TokenRequest API for, with status-report's audience (in a cluster: the job-state Trigger's
// subscriber.audience, the same string), and status-report accepts that ServiceAccount only.
const (
	EventAudience         = "serving.knative.dev/service/ucloud-im/status-report"
	MonitorServiceAccount = "ucloud-im-monitor"
	IMNamespace           = "ucloud-im"
)

// EnsureServiceAccount creates the namespace (if missing) and the ServiceAccount name in it (if missing).
func EnsureServiceAccount(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", ns, name, err)
	}
	return nil
}

// EventVars are the variables that give status-report its sender policy and the monitor its tokens, for a
// monitor running as ServiceAccount ns/MonitorServiceAccount.
func EventVars(ns string) []string {
	return []string{
		"EVENT_AUDIENCE=" + EventAudience,
		"EVENT_SENDERS=system:serviceaccount:" + ns + ":" + MonitorServiceAccount,
		"EVENT_TOKEN_SERVICE_ACCOUNT=" + ns + "/" + MonitorServiceAccount,
		"EVENT_TOKEN_AUDIENCE=" + EventAudience,
	}
}
