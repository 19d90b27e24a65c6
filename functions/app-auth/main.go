// Command app-auth is the function every request to a job's host passes through (min-scale 1): it answers
// GET /ucloud/{provider}/authorize-app?token=... (one-time token -> session cookie), decides on every other
// request (cookie for that host, same origin for writes and WebSockets) and forwards what it allows to the
// job's per-rank Service.
package main

import "github.com/ucloud-im/knative-im/shared/appauth"

func main() { appauth.Main("app-auth") }
