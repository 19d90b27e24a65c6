// Command app-auth is the scale-to-zero function behind every job's
// GET /ucloud/{provider}/authorize-app?token=... (one-time token -> session cookie) and the ingress's
// external-authorization check (/check/...) that lets only requests with a valid cookie reach a job.
package main

import "github.com/ucloud-im/knative-im/shared/appauth"

func main() { appauth.AuthMain("app-auth") }
