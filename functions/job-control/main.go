// Command job-control is the scale-to-zero function serving Core's jobs/terminate, jobs/extend,
// jobs/interactiveSession and jobs/retrieveProducts.
package main

import "github.com/ucloud-im/knative-im/shared/jobs"

func main() { jobs.Main("job-control", true) }
