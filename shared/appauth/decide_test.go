package appauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appauth"
)

// TestOrigins: a write with a valid cookie passes only from the host's own origin, however the browser
// writes it; any other scheme, port or host, "null", two Origins or a path is refused.
func TestOrigins(t *testing.T) {
	d := &appauth.Decider{Provider: "k8s", AppsDomain: "apps.example.org", Sessions: sessions}
	const host = "app-1-0.apps.example.org"
	c := sessions.Cookie(host)
	for _, tc := range []struct {
		name, host string
		origins    []string
		fetchSite  string
		status     int
	}{
		{"own origin", host, []string{"https://" + host}, "", 0},
		{"own origin, default port", host, []string{"https://" + host + ":443"}, "", 0},
		{"own origin, upper case", host, []string{"https://APP-1-0.apps.example.org"}, "", 0},
		{"own origin with the Host's port", host + ":8443", []string{"https://" + host + ":8443"}, "", 0},
		{"no Origin, same-origin fetch", host, nil, "same-origin", 0},
		{"plain http off localhost", host, []string{"http://" + host}, "", 403},
		{"another port", host, []string{"https://" + host + ":8443"}, "", 403},
		{"a sibling job", host, []string{"https://app-2-0.apps.example.org"}, "", 403},
		{"the parent domain", host, []string{"https://apps.example.org"}, "", 403},
		{"null", host, []string{"null"}, "", 403},
		{"two Origins", host, []string{"https://" + host, "https://app-2-0.apps.example.org"}, "", 403},
		{"with a path", host, []string{"https://" + host + "/x"}, "", 403},
		{"with user info", host, []string{"https://u@" + host}, "", 403},
		{"Origin of a sibling, fetch says same-origin", host, []string{"https://app-2-0.apps.example.org"}, "same-origin", 403},
		{"no Origin, same-site fetch", host, nil, "same-site", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/contents", nil)
			r.Host = tc.host
			r.AddCookie(c)
			r.Header["Origin"] = tc.origins
			if tc.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tc.fetchSite)
			}
			got := d.Decide(r)
			if got.Status != tc.status || (tc.status == 0 && (got.JobID != "1" || got.Rank != 0 || got.Host != host)) {
				t.Fatalf("%+v", got)
			}
		})
	}
}
