package walkthrough

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// terminal: the integrated terminal as UCloud's web client opens it: core2's openTerminalInFolder (Core's
// token and the user in ucloud-username) through the gateway to config-update, which registers the
// terminal's job with Core for this fresh user and starts its pod; then the browser's socket at
// domainOverride (job-streams), the waiting text while the pod starts, and a command's output.
func (w *walker) terminal(ctx context.Context) error {
	user := "dave" + w.JobID + "#1" // a fresh user each run: the terminal is registered for them now
	drive := "9" + w.JobID
	if err := w.giveDrive(ctx, drive, user); err != nil {
		return err
	}
	tok, err := w.Token()
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(map[string]any{"items": []any{map[string]string{"folder": "/" + drive + "/Home"}}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.IMURL+"/ucloud/"+w.Provider+"/jobs/openTerminalInFolder", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("ucloud-username", base64.StdEncoding.EncodeToString([]byte(user)))
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	w.say("POST /jobs/openTerminalInFolder (as %s, folder /%s/Home) -> %d %s", user, drive, resp.StatusCode, clip(body))
	var sessions ucloud.BulkResponse[ucloud.OpenSession]
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &sessions) != nil || len(sessions.Responses) != 1 {
		return fmt.Errorf("openTerminalInFolder: %d %s", resp.StatusCode, body)
	}
	s := sessions.Responses[0]
	w.say("the terminal is job %s (registered with Core for %s), shell session at %s", s.JobID, user, s.DomainOverride)

	sh, err := fakecore.OpenShell(ctx, s, w.Provider, user)
	if err != nil {
		return fmt.Errorf("shell socket at %s: %w", s.DomainOverride, err)
	}
	defer sh.Close()
	if _, err := sh.Initialize(s.SessionIdentifier, 80, 24); err != nil {
		return err
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
	var out strings.Builder
	const cmd = "echo hello from the integrated terminal\r"
	deadline := time.After(30 * time.Second)
	retype := time.NewTicker(2 * time.Second)
	defer retype.Stop()
	if _, err := sh.Input(cmd); err != nil {
		return err
	}
	for strings.Count(out.String(), "hello from the integrated terminal") < 2 { // the echoed command and its output
		select {
		case fr, ok := <-frames:
			if !ok {
				return fmt.Errorf("the terminal closed: %q", out.String())
			}
			if fr.Payload.Type == "data" {
				out.WriteString(fr.Payload.Data)
			}
		case <-retype.C:
			if _, err := sh.Input(cmd); err != nil { // typed while the pod was starting is dropped
				return err
			}
		case <-deadline:
			return fmt.Errorf("the terminal did not answer: %q", out.String())
		}
	}
	ansi := regexp.MustCompile(`\x1b(\[[0-9;?]*[a-zA-Z]|\][^\x07]*\x07)`)
	for _, l := range strings.Split(ansi.ReplaceAllString(strings.ReplaceAll(out.String(), "\r", ""), ""), "\n") {
		if strings.TrimSpace(l) != "" {
			w.say("terminal: %s", l)
		}
	}
	return nil
}
