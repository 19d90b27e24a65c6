// Command job-control is the scale-to-zero function serving every Core job call but create (terminate,
// extend, interactiveSession, retrieveProducts, requestDynamicParameters, suspend, unsuspend,
// onUpdatedLabels, attach/detachResource) and the provider-level calls Core polls
// beside retrieveProducts (integration manifest and init, branding, other kinds' retrieveProducts).
package main

import "github.com/ucloud-im/knative-im/shared/jobs"

func main() { jobs.ControlMain() }
