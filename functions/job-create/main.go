// Command job-create is the scale-to-zero function serving Core's POST /ucloud/{provider}/jobs: each job
// becomes a pod per rank, a headless service and a network policy.
package main

import "github.com/ucloud-im/knative-im/shared/jobs"

func main() { jobs.CreateMain() }
