// Command monitor is the one long-lived function (min-scale 1, max-scale 1): it watches the job pods,
// reports each job's state changes as CloudEvents to K_SINK, expires jobs past their allocation, and
// recreates integrated applications' pods.
package main

import "github.com/ucloud-im/knative-im/shared/monitor"

func main() { monitor.Main("monitor") }
