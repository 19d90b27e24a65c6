// Package appdomain names and builds the wildcard application domain's objects: the hosts
// app-<job>-<rank>.<apps domain>, the per-rank Service and KIngress job-create makes, the provider API
// host's path table and its KIngress.
package appdomain

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
)

// Function names: the Knative Service (and, locally, the process) serving each route.
const (
	FnJobCreate      = "job-create"
	FnJobControl     = "job-control"
	FnConfigRetrieve = "config-retrieve"
	FnConfigUpdate   = "config-update"
	FnConfigReset    = "config-reset"
	FnConfigRestart  = "config-restart"
	FnAppAuth        = "app-auth"
	FnJobStreams     = "job-streams"
)

// Route is one path Core (or a browser) calls and the function that serves it.
type Route struct {
	Method   string
	Path     string
	Function string
}

// Pattern is the route as a net/http ServeMux pattern.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Call is one entry of the provider API's path table: Core (or a browser) calls Method on /ucloud/Path, and
// Function serves it. In Path, {provider} stands for the provider id and {app} for each integrated
// application's name.
type Call struct {
	Method   string
	Path     string
	Function string
}

// Calls is the one table of the provider API host: every path UCloud/Core calls. APIRoutes makes the
// ingresses' routes from it and Serve registers each function's handlers on it, so a path is written
// here only. Ingresses match paths by prefix, first match wins, so a path comes before any path it is a
// prefix of.
func Calls() []Call {
	return []Call{
		{"POST", "{provider}/jobs/terminate", FnJobControl},
		{"POST", "{provider}/jobs/extend", FnJobControl},
		{"POST", "{provider}/jobs/interactiveSession", FnJobControl},
		{"GET", "{provider}/jobs/retrieveProducts", FnJobControl},
		{"POST", "{provider}/jobs/requestDynamicParameters", FnJobControl},
		{"POST", "{provider}/jobs/suspend", FnJobControl},
		{"POST", "{provider}/jobs/unsuspend", FnJobControl},
		{"POST", "{provider}/jobs/onUpdatedLabels", FnJobControl},
		{"POST", "{provider}/jobs/attachResource", FnJobControl},
		{"POST", "{provider}/jobs/detachResource", FnJobControl},
		// The integrated terminal: config-update, which owns the terminal's configuration, its drive
		// check and its registration with Core.
		{"POST", "{provider}/jobs/openTerminalInFolder", FnConfigUpdate},
		{"POST", "{provider}/jobs", FnJobCreate},
		// Provider-level calls Core polls every 10 s beside jobs/retrieveProducts: job-control serves
		// them, so the poll that keeps it warm is one function's, not six.
		{"GET", "{provider}/integration/retrieveManifest", FnJobControl},
		{"POST", "{provider}/integration/init", FnJobControl},
		{"GET", "{provider}/provider/branding/retrieveInfo", FnJobControl},
		{"GET", "{provider}/files/collections/retrieveProducts", FnJobControl},
		{"GET", "{provider}/ingresses/retrieveProducts", FnJobControl},
		{"GET", "{provider}/networkips/retrieveProducts", FnJobControl},
		{"GET", "{provider}/licenses/retrieveProducts", FnJobControl},
		{"GET", "{provider}/private-networks/retrieveProducts", FnJobControl},
		// The job page's WebSockets: Core's log follow, and the browser's shell (with a session
		// identifier job-control handed out, no Core token). shared/streams matches both with one
		// pattern of its own (GET /ucloud/{segment}/websocket), since a ServeMux wildcard cannot be part
		// of a segment.
		{"GET", "jobs.provider.{provider}/websocket", FnJobStreams},
		{"GET", "{provider}/websocket", FnJobStreams},
		{"POST", "{provider}/iapps/{app}/retrieve", FnConfigRetrieve},
		{"POST", "{provider}/iapps/{app}/update", FnConfigUpdate},
		{"POST", "{provider}/iapps/{app}/reset", FnConfigReset},
		{"POST", "{provider}/iapps/{app}/restart", FnConfigRestart},
	}
}

// APIRoutes is the table's routes for provider and the integrated applications named, the {app} calls
// once per application (an application's together, after every other call): the KIngress of the API
// host and the local gateway are both made from it.
func APIRoutes(provider string, apps []string) []Route {
	var rs, perApp []Route
	for _, c := range Calls() {
		r := Route{c.Method, "/ucloud/" + strings.ReplaceAll(c.Path, "{provider}", provider), c.Function}
		if strings.Contains(r.Path, "{app}") {
			perApp = append(perApp, r)
		} else {
			rs = append(rs, r)
		}
	}
	for _, app := range apps {
		for _, r := range perApp {
			rs = append(rs, Route{r.Method, strings.ReplaceAll(r.Path, "{app}", app), r.Function})
		}
	}
	return rs
}

// Serve registers on mux the handler of each call of the table that function serves, by the call's Path
// (handlers["{provider}/jobs/terminate"]), under the table's method and path. It panics when one of the
// function's calls has no handler or a handler names no call of the function's: either is a programming
// error, found the first time the function starts (and by its package's tests), never a request's.
func Serve(mux *http.ServeMux, function string, handlers map[string]http.Handler) {
	left := maps.Clone(handlers)
	for _, c := range Calls() {
		if c.Function != function {
			continue
		}
		h, ok := left[c.Path]
		if !ok {
			panic(fmt.Sprintf("appdomain: %s serves %s /ucloud/%s but has no handler for it", function, c.Method, c.Path))
		}
		delete(left, c.Path)
		mux.Handle(c.Method+" /ucloud/"+c.Path, h)
	}
	for path := range left {
		panic(fmt.Sprintf("appdomain: %s has a handler for /ucloud/%s, which is none of its calls in the path table", function, path))
	}
}

// AuthorizePath is where a job's host exchanges a one-time token for the session cookie.
func AuthorizePath(provider string) string { return "/ucloud/" + provider + "/authorize-app" }
