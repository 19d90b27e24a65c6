// Command status-report is the scale-to-zero function that receives the monitor's job state CloudEvents
// (com.github.ucloud-im.job.state.changed), keeps them in a PostgreSQL outbox and delivers them to Core's
// jobs/control/update.
package main

import "github.com/ucloud-im/knative-im/shared/status"

func main() { status.Main("status-report") }
