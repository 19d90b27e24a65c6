// Command job-streams serves the WebSockets of the job page: Core's log follow
// (/ucloud/jobs.provider.<P>/websocket) and the browser's shell sessions (/ucloud/<P>/websocket).
package main

import "github.com/ucloud-im/knative-im/shared/streams"

func main() { streams.Main("job-streams") }
