// Package appdomain names and builds the wildcard application domain's objects: the hosts
// app-<job>-<rank>.<apps domain>, the per-rank Service and KIngress job-create makes, the provider API
// host's path table and its KIngress.
package appdomain

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

// APIRoutes is the one table of the provider API host: every path UCloud/Core calls, for the integrated
// applications named. The KIngress of the API host and the local gateway are both made from it. Ingresses
// match paths by prefix, first match wins, so a path comes before any path it is a prefix of.
func APIRoutes(provider string, apps []string) []Route {
	base := "/ucloud/" + provider
	rs := []Route{
		{"POST", base + "/jobs/terminate", FnJobControl},
		{"POST", base + "/jobs/extend", FnJobControl},
		{"POST", base + "/jobs/interactiveSession", FnJobControl},
		{"GET", base + "/jobs/retrieveProducts", FnJobControl},
		{"POST", base + "/jobs/requestDynamicParameters", FnJobControl},
		{"POST", base + "/jobs/suspend", FnJobControl},
		{"POST", base + "/jobs/unsuspend", FnJobControl},
		{"POST", base + "/jobs/onUpdatedLabels", FnJobControl},
		{"POST", base + "/jobs/attachResource", FnJobControl},
		{"POST", base + "/jobs/detachResource", FnJobControl},
		// The integrated terminal: config-update, which owns the terminal's configuration, its drive
		// check and its registration with Core.
		{"POST", base + "/jobs/openTerminalInFolder", FnConfigUpdate},
		{"POST", base + "/jobs", FnJobCreate},
		// Provider-level calls Core polls every 10 s beside jobs/retrieveProducts: job-control serves
		// them, so the poll that keeps it warm is one function's, not six.
		{"GET", base + "/integration/retrieveManifest", FnJobControl},
		{"POST", base + "/integration/init", FnJobControl},
		{"GET", base + "/provider/branding/retrieveInfo", FnJobControl},
		{"GET", base + "/files/collections/retrieveProducts", FnJobControl},
		{"GET", base + "/ingresses/retrieveProducts", FnJobControl},
		{"GET", base + "/networkips/retrieveProducts", FnJobControl},
		{"GET", base + "/licenses/retrieveProducts", FnJobControl},
		{"GET", base + "/private-networks/retrieveProducts", FnJobControl},
		// The job page's WebSockets: Core's log follow, and the browser's shell (with a session
		// identifier job-control handed out, no Core token).
		{"GET", "/ucloud/jobs.provider." + provider + "/websocket", FnJobStreams},
		{"GET", base + "/websocket", FnJobStreams},
	}
	for _, app := range apps {
		for _, op := range []string{"retrieve", "update", "reset", "restart"} {
			rs = append(rs, Route{"POST", base + "/iapps/" + app + "/" + op, "config-" + op})
		}
	}
	return rs
}

// AuthorizePath is where a job's host exchanges a one-time token for the session cookie.
func AuthorizePath(provider string) string { return "/ucloud/" + provider + "/authorize-app" }
