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

	sh, frames, err := openShell(ctx, s, w.Provider, user)
	if err != nil {
		return err
	}
	defer sh.Close()
	out, err := typeUntil(sh, frames, "terminal", "echo hello from the integrated terminal\r", 30*time.Second, func(out string) bool {
		return strings.Count(out, "hello from the integrated terminal") >= 2 // the echoed command and its output
	})
	if err != nil {
		return err
	}
	ansi := regexp.MustCompile(`\x1b(\[[0-9;?]*[a-zA-Z]|\][^\x07]*\x07)`)
	for _, l := range strings.Split(ansi.ReplaceAllString(strings.ReplaceAll(out, "\r", ""), ""), "\n") {
		if strings.TrimSpace(l) != "" {
			w.say("terminal: %s", l)
		}
	}
	return nil
}
