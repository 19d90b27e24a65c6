package iapps

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// MaxTerminalFolders bounds the folders of an integrated terminal.
const MaxTerminalFolders = 50

// TerminalConfig is the integrated terminal's configuration. The original IM wrote the key as "Folders";
// decoding matches keys case-insensitively, so that spelling is accepted, and the stored form is "folders".
type TerminalConfig struct {
	Folders []string `json:"folders"`
}

// Terminal is the integrated terminal: a shell pod with the user's folders mounted, scaled to zero (its job
// SUSPENDED, not ended) once idle for IdleTimeout.
type Terminal struct {
	Image       string
	IdleTimeout time.Duration
	// Now is the clock for the idle rule (default time.Now).
	Now func() time.Time
	// Isolation describes the cluster for the pod's NetworkPolicy.
	Isolation isolation.Env
}

// Name implements Handler.
func (Terminal) Name() string { return "terminal" }

// Default implements Handler: no folders.
func (Terminal) Default() json.RawMessage { return json.RawMessage(`{"folders":[]}`) }

// Reset implements Handler.
func (t Terminal) Reset(json.RawMessage) json.RawMessage { return t.Default() }

// Validate implements Handler.
func (Terminal) Validate(raw json.RawMessage) (json.RawMessage, error) {
	var c TerminalConfig
	if err := decodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if c.Folders == nil {
		c.Folders = []string{}
	}
	if len(c.Folders) > MaxTerminalFolders {
		return nil, &ValidationError{Field: "folders", Reason: fmt.Sprintf("has %d entries; at most %d are allowed", len(c.Folders), MaxTerminalFolders)}
	}
	seen := map[string]bool{}
	for i, f := range c.Folders {
		field := fmt.Sprintf("folders[%d]", i)
		if err := checkUCloudPath(field, f); err != nil {
			return nil, err
		}
		if seen[f] {
			return nil, &ValidationError{Field: field, Reason: "appears twice"}
		}
		seen[f] = true
	}
	return json.Marshal(c)
}

// ShouldRun implements Handler: with at least one folder, until IdleTimeout has passed since the last
// activity (Record.Activity: the last configuration change or the idle lease, which openTerminalInFolder
// starts and every keystroke renews, stored in terminal_lease so a restarted function keeps it).
func (t Terminal) ShouldRun(raw json.RawMessage, changed time.Time) bool {
	var c TerminalConfig
	if json.Unmarshal(raw, &c) != nil || len(c.Folders) == 0 {
		return false
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	return t.IdleTimeout <= 0 || now().Sub(changed) < t.IdleTimeout
}

// JobSpec implements Handler.
func (Terminal) JobSpec(provider string) ucloud.JobSpecification {
	return iappJobSpec("terminal", provider)
}

// MakeObjects implements Handler: a shell container with every folder mounted read-write.
func (t Terminal) MakeObjects(job Job, raw json.RawMessage) (Objects, error) {
	var c TerminalConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return Objects{}, fmt.Errorf("stored terminal configuration: %w", err)
	}
	image := t.Image
	if image == "" {
		image = "ubuntu:24.04"
	}
	pod, cm := basePod(job, raw, image, []string{"sleep", "infinity"}, "500m", "2Gi")
	folders := make([]drives.Folder, len(c.Folders))
	for i, mp := range mountPaths(c.Folders) {
		folders[i] = drives.Folder{UCloudPath: c.Folders[i], At: mp}
	}
	if err := mountFolders(pod, folders); err != nil {
		return Objects{}, fmt.Errorf("stored terminal configuration: %w", err)
	}
	// A shell is a job like any other: fenced in, reached by no one (sessions will come through the
	// apiserver's exec, not the network).
	return Objects{Pod: pod, ConfigMap: cm, Policy: policy(t.Isolation, job, isolation.Ports{})}, nil
}

// Folders implements Mounter: the terminal mounts every folder read-write, so each needs EDIT.
func (Terminal) Folders(raw json.RawMessage) ([]drives.Folder, error) {
	var c TerminalConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("terminal configuration: %w", err)
	}
	out := make([]drives.Folder, len(c.Folders))
	for i, f := range c.Folders {
		out[i] = drives.Folder{UCloudPath: f}
	}
	return out, nil
}

// Without implements Mounter: a terminal that lost any of its folders does not run (the original's
// ShouldRun is false when a folder lacks EDIT): its pod is stopped.
func (Terminal) Without(raw json.RawMessage, _ []drives.Folder) (json.RawMessage, bool, error) {
	return raw, false, nil
}
