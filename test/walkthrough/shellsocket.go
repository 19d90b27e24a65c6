package walkthrough

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// openShell opens the browser's socket of session s as user and initializes it at 80x24; the frames the
// provider sends come on the channel, closed when the socket ends. The caller closes the shell.
func openShell(ctx context.Context, s ucloud.OpenSession, provider, user string) (*fakecore.Shell, <-chan fakecore.ShellFrame, error) {
	sh, err := fakecore.OpenShell(ctx, s, provider, user)
	if err != nil {
		return nil, nil, fmt.Errorf("shell socket at %s: %w", s.DomainOverride, err)
	}
	if _, err := sh.Initialize(s.SessionIdentifier, 80, 24); err != nil {
		sh.Close()
		return nil, nil, err
	}
	frames := make(chan fakecore.ShellFrame, 64)
	go func() {
		defer close(frames)
		for {
			fr, err := sh.Next()
			if err != nil {
				return
			}
			frames <- fr
		}
	}()
	return sh, frames, nil
}

// typeUntil types cmd, and again every 2 s (what is typed while a pod starts is dropped), collecting the
// data frames until done says the output so far is enough; what names the shell in errors.
func typeUntil(sh *fakecore.Shell, frames <-chan fakecore.ShellFrame, what, cmd string, within time.Duration, done func(out string) bool) (string, error) {
	var out strings.Builder
	deadline := time.After(within)
	retype := time.NewTicker(2 * time.Second)
	defer retype.Stop()
	if _, err := sh.Input(cmd); err != nil {
		return "", err
	}
	for !done(out.String()) {
		select {
		case fr, ok := <-frames:
			if !ok {
				return "", fmt.Errorf("the %s closed: %q", what, out.String())
			}
			if fr.Payload.Type == "data" {
				out.WriteString(fr.Payload.Data)
			}
		case <-retype.C:
			if _, err := sh.Input(cmd); err != nil {
				return "", err
			}
		case <-deadline:
			return "", fmt.Errorf("the %s did not answer: %q", what, out.String())
		}
	}
	return out.String(), nil
}
