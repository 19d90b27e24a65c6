package walkthrough

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// streams: a 2-rank job's logs followed as Core follows them, a shell opened as the browser opens it, both
// through the gateway to job-streams. KWOK serves each rank's log from a file written here and runs the
// shell's commands on this machine.
func (w *walker) streams(ctx context.Context) error {
	id := w.JobID + "4"
	dir, err := os.MkdirTemp("", "walkthrough-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	files := make([]string, 2)
	for rank := range 2 {
		files[rank] = filepath.Join(dir, fmt.Sprintf("rank-%d.log", rank))
		if err := appendLog(files[rank], fmt.Sprintf("rank %d: starting", rank), fmt.Sprintf("rank %d: epoch 1 loss 0.9", rank)); err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]any{"apiVersion": localenv.KwokGroupVersion.String(), "kind": "Logs",
			"metadata": map[string]any{"name": kube.PodName(id, rank), "namespace": w.Namespace},
			"spec":     map[string]any{"logs": []any{map[string]any{"logsFile": files[rank], "follow": true}}}})
		if err := w.Kube.CoreV1().RESTClient().Post().AbsPath("/apis", localenv.KwokGroupVersion.Group, localenv.KwokGroupVersion.Version,
			"namespaces", w.Namespace, "logs").Body(body).SetHeader("Content-Type", "application/json").Do(ctx).Error(); err != nil {
			return fmt.Errorf("KWOK Logs object: %w", err)
		}
	}
	if code, body, err := w.core(ctx, http.MethodPost, "/jobs", ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{w.jobOf(id, 2)}}); err != nil || code != 200 {
		return fmt.Errorf("create: %d %s %v", code, body, err)
	}
	if err := w.waitStates(ctx, id, ucloud.StateRunning); err != nil {
		return err
	}

	// Core's follow socket, with Core's token, through the gateway.
	tok, err := w.Token()
	if err != nil {
		return err
	}
	job := w.jobOf(id, 2)
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, fakecore.FollowURL(w.IMURL, w.Provider, "alice#1234"), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return fmt.Errorf("follow socket: %w", err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]any{"call": "jobs.provider." + w.Provider + ".follow", "streamId": "0", "bearer": "", "project": nil,
		"payload": map[string]any{"type": "init", "job": job}}); err != nil {
		return err
	}
	f := &fakecore.Follow{Conn: conn}
	got := map[int]string{}
	read := func(want func() bool) error {
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		for !want() {
			fr, err := f.Next()
			if err != nil {
				return fmt.Errorf("follow: %w (got %v)", err, got)
			}
			if fr.Type == "message" && fr.Payload.Stdout != nil {
				for _, l := range strings.SplitAfter(*fr.Payload.Stdout, "\n") {
					if l != "" {
						w.say("follow: rank %d | %s", fr.Payload.Rank, strings.TrimSuffix(l, "\n"))
					}
				}
				got[fr.Payload.Rank] += *fr.Payload.Stdout
			}
			if fr.Type == "response" {
				w.say("follow: response frame (status %d): the job ended", fr.Status)
				return nil
			}
		}
		return nil
	}
	if err := read(func() bool { return strings.Contains(got[0], "epoch 1") && strings.Contains(got[1], "epoch 1") }); err != nil {
		return err
	}
	for rank := range 2 {
		if err := appendLog(files[rank], fmt.Sprintf("rank %d: epoch 2 loss 0.4", rank)); err != nil {
			return err
		}
	}
	if err := read(func() bool { return strings.Contains(got[0], "epoch 2") && strings.Contains(got[1], "epoch 2") }); err != nil {
		return err
	}

	// The browser's shell: Core's interactiveSession SHELL, then the socket at domainOverride.
	code, body, err := w.core(ctx, http.MethodPost, "/jobs/interactiveSession", map[string]any{"items": []any{map[string]any{"job": job, "rank": 1, "sessionType": "SHELL"}}})
	if err != nil || code != 200 {
		return fmt.Errorf("interactiveSession SHELL: %d %s %v", code, body, err)
	}
	var sessions ucloud.BulkResponse[ucloud.OpenSession]
	if err := json.Unmarshal(body, &sessions); err != nil || len(sessions.Responses) != 1 {
		return fmt.Errorf("interactiveSession answer %s: %v", body, err)
	}
	s := sessions.Responses[0]
	sh, frames, err := openShell(ctx, s, w.Provider, "alice#1234")
	if err != nil {
		return err
	}
	defer sh.Close()
	ansi := regexp.MustCompile(`\x1b(\[[0-9;?]*[a-zA-Z]|\][^\x07]*\x07)`)
	size := regexp.MustCompile(`(?m)^\d+ \d+$`)
	// KWOK may apply the first size after the first command: typed again until stty shows one.
	out, err := typeUntil(sh, frames, "shell", "stty size; echo hello from the shell\r", 20*time.Second, func(out string) bool {
		return strings.Contains(out, "hello from the shell") && size.MatchString(ansi.ReplaceAllString(strings.ReplaceAll(out, "\r", ""), ""))
	})
	if err != nil {
		return err
	}
	for _, l := range strings.Split(ansi.ReplaceAllString(strings.ReplaceAll(out, "\r", ""), ""), "\n") {
		if strings.TrimSpace(l) != "" {
			w.say("shell (rank 1, 80x24): %s", l)
		}
	}
	sh.Close()

	// The job ends: the follow gets its response frame and closes.
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, localenv.ExitCodeAnnotation)
	for rank := range 2 {
		if _, err := w.Kube.CoreV1().Pods(w.Namespace).Patch(ctx, kube.PodName(id, rank), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
	}
	// Until the response frame (read returns on it).
	if err := read(func() bool { return false }); err != nil {
		return err
	}
	return w.waitStates(ctx, id, ucloud.StateSuccess)
}

func appendLog(path string, lines ...string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(localenv.CRILogLine(time.Now(), "stdout", l)); err != nil {
			return err
		}
	}
	return nil
}
