package appdomain_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/appdomain"
)

// Serve registers a function's calls under the table's method and path, and nothing else.
func TestServeRegistersTheTablesCalls(t *testing.T) {
	mux := http.NewServeMux()
	hs := map[string]http.Handler{}
	for _, c := range appdomain.Calls() {
		if c.Function == appdomain.FnConfigUpdate {
			path := c.Path
			hs[path] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(path)) })
		}
	}
	appdomain.Serve(mux, appdomain.FnConfigUpdate, hs)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"POST", "/ucloud/k8s/iapps/syncthing/update", 200, "{provider}/iapps/{app}/update"},
		{"GET", "/ucloud/k8s/iapps/syncthing/update", 405, ""},
		{"POST", "/ucloud/k8s/iapps/syncthing/retrieve", 404, ""},
		{"POST", "/ucloud/k8s/jobs", 404, ""},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || (tc.body != "" && rec.Body.String() != tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
}

// A handler for a call the table does not give the function, or a call of the function's without a
// handler, is refused when the function builds its routes, never found later by a request.
func TestServeRefusesAMismatchWithTheTable(t *testing.T) {
	ok := http.NotFoundHandler()
	for _, tc := range []struct {
		name     string
		function string
		handlers map[string]http.Handler
		want     string
	}{
		{"a call of another function's", appdomain.FnJobCreate, map[string]http.Handler{"{provider}/jobs": ok, "{provider}/jobs/terminate": ok}, "none of its calls"},
		{"a path the table does not list", appdomain.FnJobCreate, map[string]http.Handler{"{provider}/jobs": ok, "{provider}/jobs/other": ok}, "none of its calls"},
		{"a call without a handler", appdomain.FnJobCreate, map[string]http.Handler{}, "has no handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r, _ := recover().(string); !strings.Contains(r, tc.want) {
					t.Fatalf("Serve panicked with %q, want one saying %q", r, tc.want)
				}
			}()
			appdomain.Serve(http.NewServeMux(), tc.function, tc.handlers)
		})
	}
}

// Each {app} call appears once per application, the others once, all under /ucloud/.
func TestAPIRoutesExpandTheApps(t *testing.T) {
	routes := appdomain.APIRoutes("k8s", []string{"syncthing", "terminal"})
	count := map[string]int{}
	for _, r := range routes {
		if strings.Contains(r.Path, "{") || !strings.HasPrefix(r.Path, "/ucloud/") {
			t.Errorf("route %s is not a concrete path", r.Path)
		}
		count[r.Function]++
	}
	if count[appdomain.FnConfigRetrieve] != 2 || count[appdomain.FnJobCreate] != 1 || len(routes) != len(appdomain.Calls())+4 {
		t.Errorf("routes per function %v (%d routes)", count, len(routes))
	}
}
