package envtest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/test/envtest"
)

// recorder is a test that notes a skip or a failure instead of ending.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...) }

// On a machine where the control plane was never built and no KUBECONFIG is given, a test that needs the
// cluster is skipped with a reason that says what to run, and nothing is built or started; under make
// test (UCLOUD_IM_REQUIRE_CLUSTER=1) the same test fails instead of passing unseen.
func TestClusterTestsSkipWithoutABuiltControlPlane(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("UCLOUD_IM_CACHE", t.TempDir()) // test/env/build.sh's cache: empty, nothing built
	for _, tc := range []struct {
		require         string
		skipped, failed bool
	}{{"", true, false}, {"1", false, true}} {
		t.Setenv(envtest.RequireEnv, tc.require)
		e := &envtest.Env{}
		r := &recorder{TB: t}
		e.Cluster(r)
		if (r.skipped != "") != tc.skipped || (r.failed != "") != tc.failed {
			t.Fatalf("%s=%q: skipped %q, failed %q", envtest.RequireEnv, tc.require, r.skipped, r.failed)
		}
		if got := r.skipped + r.failed; !strings.Contains(got, envtest.NeedsCluster) {
			t.Errorf("reason %q does not say what to run (%q)", got, envtest.NeedsCluster)
		}
		if e.Clientset != nil || e.Config != nil {
			t.Errorf("a skipped cluster has clients: %+v", e)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
