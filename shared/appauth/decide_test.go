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

// TestFetchMetadata: with the cookie, a sibling job's page (same site) cannot have the browser fetch, embed
// or frame the victim's app; following a link (UCloud's included), the app's own pages and the user's typed
// address work; a client that sends no Fetch metadata is judged as before; the authorize path is reached by
// UCloud's cross-site navigation, without a cookie, and is still the authorize path.
func TestFetchMetadata(t *testing.T) {
	d := &appauth.Decider{Provider: "k8s", AppsDomain: "apps.example.org", Sessions: sessions}
	const host = "app-1-0.apps.example.org"
	ok := appauth.Decision{Host: host, JobID: "1", Rank: 0}
	crossSite := appauth.Decision{Status: 403, Code: "CROSS_SITE",
		Why: "This request came from another page than the application's own: open the application by following a link to it."}
	crossOrigin := appauth.Decision{Status: 403, Code: "CROSS_ORIGIN", Why: "This request did not come from the application's own pages."}
	fetch := func(site, mode, dest string) http.Header {
		return http.Header{"Sec-Fetch-Site": {site}, "Sec-Fetch-Mode": {mode}, "Sec-Fetch-Dest": {dest}}
	}
	for _, tc := range []struct {
		name, method, target string
		cookie               bool
		header               http.Header
		want                 appauth.Decision
	}{
		{"sibling's fetch with credentials", "GET", "/api/delete-all", true, fetch("same-site", "cors", "empty"), crossSite},
		{"sibling's no-cors fetch", "GET", "/api/delete-all", true, fetch("same-site", "no-cors", "empty"), crossSite},
		{"sibling's img", "GET", "/api/delete-all", true, fetch("same-site", "no-cors", "image"), crossSite},
		{"sibling's script", "GET", "/api/state.js", true, fetch("same-site", "no-cors", "script"), crossSite},
		{"sibling's iframe", "GET", "/lab", true, fetch("same-site", "navigate", "iframe"), crossSite},
		{"sibling's object", "GET", "/lab", true, fetch("same-site", "navigate", "object"), crossSite},
		{"other site's iframe", "GET", "/lab", true, fetch("cross-site", "navigate", "iframe"), crossSite},
		{"sibling's WebSocket", "GET", "/api/kernels/1/channels", true,
			http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"websocket"}, "Sec-Fetch-Dest": {"websocket"},
				"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://" + host}}, crossSite},
		{"navigate without a destination", "GET", "/lab", true, http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"navigate"}}, crossSite},
		{"two Sec-Fetch-Site", "GET", "/lab", true, http.Header{"Sec-Fetch-Site": {"same-origin", "same-site"}}, crossSite},
		{"unknown Sec-Fetch-Site", "GET", "/lab", true, fetch("same-party", "cors", "empty"), crossSite},
		{"sibling's link followed", "GET", "/lab", true, fetch("same-site", "navigate", "document"), ok},
		{"UCloud's redirect followed", "GET", "/", true, fetch("cross-site", "navigate", "document"), ok},
		{"own page's fetch", "GET", "/api/contents", true, fetch("same-origin", "cors", "empty"), ok},
		{"own page's iframe", "GET", "/lab/tree", true, fetch("same-origin", "navigate", "iframe"), ok},
		{"typed address", "GET", "/lab", true, fetch("none", "navigate", "document"), ok},
		{"no Fetch metadata", "GET", "/api/delete-all", true, nil, ok},
		{"no Fetch metadata, POST without Origin", "POST", "/api/contents", true, nil, crossOrigin},
		{"no Fetch metadata, POST from own origin", "POST", "/api/contents", true, http.Header{"Origin": {"https://" + host}}, ok},
		{"sibling's form POST as a navigation", "POST", "/api/contents", true,
			http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"},
				"Origin": {"https://app-2-0.apps.example.org"}}, crossOrigin},
		{"sibling's fetch without the cookie", "GET", "/lab", false, fetch("same-site", "cors", "empty"),
			appauth.Decision{Status: 401, Code: "NO_SESSION", Why: "Open this application from UCloud to use it."}},
		{"authorize path from UCloud", "GET", "/ucloud/k8s/authorize-app?token=t", false, fetch("cross-site", "navigate", "document"),
			appauth.Decision{Authorize: true, Host: host, JobID: "1", Rank: 0}},
		{"authorize path without Fetch metadata", "GET", "/ucloud/k8s/authorize-app?token=t", false, nil,
			appauth.Decision{Authorize: true, Host: host, JobID: "1", Rank: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.Host = host
			for k, v := range tc.header {
				r.Header[k] = v
			}
			if tc.cookie {
				r.AddCookie(sessions.Cookie(host))
			}
			if got := d.Decide(r); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
