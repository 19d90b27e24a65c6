package appauth_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appauth"
)

// FuzzDecide: whatever request target and Host arrive, without a cookie nothing is forwarded, and only the
// exact bytes of the authorize path are treated as it.
func FuzzDecide(f *testing.F) {
	d := &appauth.Decider{Provider: "k8s", AppsDomain: "apps.example.org", Sessions: sessions}
	for _, seed := range []string{"/ucloud/k8s/authorize-app?token=x", "/ucloud/k8s%2Fauthorize-app", "//ucloud/k8s/authorize-app",
		"/%75cloud/k8s/authorize-app", "/lab", "http://app-1-0.apps.example.org/lab", "*", "/ucloud/k8s/authorize-app/.."} {
		f.Add(seed, "app-1-0.apps.example.org")
	}
	f.Fuzz(func(t *testing.T, target, host string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")))
		if err != nil {
			return
		}
		got := d.Decide(r)
		if got.Status == 0 && !got.Authorize {
			t.Fatalf("forwarded without a cookie: %q on %q", target, host)
		}
		if got.Authorize {
			if p, _, _ := strings.Cut(r.RequestURI, "?"); p != "/ucloud/k8s/authorize-app" {
				t.Fatalf("%q taken for the authorize path", target)
			}
		}
	})
}
