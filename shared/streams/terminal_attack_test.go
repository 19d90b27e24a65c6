package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// What an attacker (or a confused client) can send to openTerminalInFolder: a folder on a drive the user
// may not edit, a path with .. or encoded tricks, no user at all. Each is refused with UCloud's error
// shape, and nothing is registered, stored or started.
func TestOpenTerminalRefusesForeignDrivesAndTrickPaths(t *testing.T) {
	r := newTerminalRig(t)
	for _, tc := range []struct {
		name, user, folder string
		status             int
		says               string
	}{
		{"another user's drive", "alice#1234", "/60/Private", http.StatusForbidden, "/60/Private"},
		{"the drive root of another user", "alice#1234", "/60", http.StatusForbidden, "/60"},
		{"dot-dot out of an own drive", "alice#1234", "/1/../60/Private", http.StatusBadRequest, "BAD_FOLDER"},
		{"dot segment", "alice#1234", "/1/./x", http.StatusBadRequest, "BAD_FOLDER"},
		{"encoded slash in the drive id", "alice#1234", "/1%2F..%2F60", http.StatusBadRequest, "BAD_FOLDER"},
		{"backslashes", `alice#1234`, `/1\..\60`, http.StatusBadRequest, "BAD_FOLDER"},
		{"double slash", "alice#1234", "//60/Private", http.StatusBadRequest, "BAD_FOLDER"},
		{"relative", "alice#1234", "60/Private", http.StatusBadRequest, "BAD_FOLDER"},
		{"fullwidth digits", "alice#1234", "/６０/Private", http.StatusBadRequest, "BAD_FOLDER"},
		{"control character", "alice#1234", "/1/a\x00b", http.StatusBadRequest, "BAD_FOLDER"},
		{"no user named", "", "/1/Home", http.StatusBadRequest, "ucloud-username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.openTerminal(tc.user, tc.folder)
			var e struct {
				Why        string `json:"why"`
				ErrorCode  string `json:"errorCode"`
				StatusCode int    `json:"statusCode"`
			}
			if status != tc.status || json.Unmarshal(body, &e) != nil || e.StatusCode != tc.status ||
				!(strings.Contains(e.Why, tc.says) || e.ErrorCode == tc.says) {
				t.Fatalf("%d %s, want %d saying %q", status, body, tc.status, tc.says)
			}
		})
	}
	r.nothingStored()
}

func (r *terminalRig) nothingStored() {
	r.t.Helper()
	if reg := r.core.Registered(); len(reg) != 0 {
		r.t.Fatalf("Core registered %+v", reg)
	}
	ctx := context.Background()
	for _, table := range []string{"iapp_config", "terminal_lease", "shell_session"} {
		var n int
		if err := r.owner.OwnerPool(r.t).QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 0 {
			r.t.Fatalf("%s has %d rows (%v)", table, n, err)
		}
	}
	pods, err := env.Clientset.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		r.t.Fatalf("pods after refusals: %v (%v)", pods, err)
	}
}

// Each user's terminal is their own: bob opening one in his drive gets his own job, and his session
// opens a shell only in it; alice's identifier, once used, opens nothing for anyone, and a forged one
// closes the socket.
func TestTerminalSessionsAreTheirOwners(t *testing.T) {
	r := newTerminalRig(t)
	stop := r.startMonitor()
	defer stop()
	a := r.session("alice#1234", "/1")
	b := r.session("bob#1", "/2/Work")
	if a.JobID == b.JobID {
		t.Fatalf("alice and bob share job %s", a.JobID)
	}
	reg := r.core.Registered()
	if len(reg) != 2 || *reg[0].CreatedBy == *reg[1].CreatedBy {
		t.Fatalf("Core registered %+v", reg)
	}
	for _, s := range []ucloud.OpenSession{a, b} {
		env.PodExec(t, r.ns, kube.PodName(s.JobID, 0), map[string]string{"PS1": "$ ", "JOB_MARK": "terminal-" + s.JobID})
	}
	shB, tmB := dialShell(t, b, "bob#1")
	defer shB.Close()
	tmB.waitLine(t, "terminal-"+b.JobID, "echo $JOB_MARK\r")
	if strings.Contains(tmB.text(), "terminal-"+a.JobID) {
		t.Fatal("bob's shell is in alice's terminal")
	}

	// bob's identifier is used: replayed (by anyone), it opens nothing; nor does a forged one.
	for name, id := range map[string]string{"replayed": b.SessionIdentifier, "forged": strings.Repeat("cd", 32)} {
		t.Run(name, func(t *testing.T) {
			_, err := refused(t, a, id)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Fatalf("want close 1008, got %v", err)
			}
		})
	}
}
