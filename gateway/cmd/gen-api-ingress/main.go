// Command gen-api-ingress writes the KIngress of the provider's API host (knative/api-ingress.yaml) from
// the provider API's path table (appdomain.Calls, through APIRoutes), so the manifest, the local gateway
// and the functions agree on every path.
// Run by `go generate ./knative`; a test fails when the file is stale.
package main

import (
	"fmt"
	"os"

	"github.com/ucloud-im/knative-im/gateway"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen-api-ingress <output.yaml>")
		os.Exit(2)
	}
	out, err := gateway.APIIngressYAML()
	if err == nil {
		err = os.WriteFile(os.Args[1], out, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
