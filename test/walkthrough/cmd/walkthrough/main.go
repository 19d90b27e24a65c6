// Command walkthrough runs the walkthrough against a running `make run` (make demo): it reads the stack's
// addresses from the environment .run/env exports.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/test/fakecore"
	"github.com/ucloud-im/knative-im/test/walkthrough"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "walkthrough:", err)
		os.Exit(1)
	}
}

func run() error {
	for _, v := range []string{"IM_URL", "UCLOUD_CORE_URL", "FAKECORE_DIR", "KUBECONFIG"} {
		if os.Getenv(v) == "" {
			return fmt.Errorf("%s is not set: start `make run` and source .run/env first", v)
		}
	}
	// The stand-in's FQDN EndpointSlice draws a deprecation warning that means nothing to the reader.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	cs, err := kube.NewClientset(os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ns := os.Getenv("JOBS_NAMESPACE")
	if ns == "" {
		ns = "ucloud-jobs"
	}
	return walkthrough.Run(ctx, walkthrough.Config{
		IMURL: os.Getenv("IM_URL"), CoreURL: os.Getenv("UCLOUD_CORE_URL"), Provider: os.Getenv("UCLOUD_PROVIDER_ID"),
		Namespace: ns, Kube: cs, Out: os.Stdout, JobID: strconv.FormatInt(time.Now().Unix()%1_000_000, 10),
		Token: func() (string, error) { return fakecore.TokenFromDir(os.Getenv("FAKECORE_DIR"), time.Hour) },
	})
}
