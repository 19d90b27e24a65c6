package fakecore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// ProviderTimeout is how long core2 waits for a provider's answer (orchestrator.providerClient) before it
// gives up on the call; on a create it then deletes the job it had made.
const ProviderTimeout = 5 * time.Second

// ProviderCall is what Core got back from a provider call: the status and body, or TimedOut when the
// provider did not answer within ProviderTimeout.
type ProviderCall struct {
	Status   int
	Body     []byte
	TimedOut bool
}

// CallProvider calls the IM as core2 does: Core's service token, the user's name base64-encoded in the
// ucloud-username header (when given), JSON, and a 5 s client timeout. A create's jobs are known to this
// Core while the provider handles the call, as in core2 (ResourceCreateThroughProvider creates the job
// before invoking the provider, and the provider's updates during the call apply to it); a create Core
// sees succeed (2xx) keeps them, as core2 confirms them, and any other outcome forgets them (core2 deletes
// the job).
func (c *Core) CallProvider(ctx context.Context, baseURL, method, path, username string, body any) (ProviderCall, error) {
	var payload io.Reader
	var sent []byte
	if body != nil {
		var err error
		if sent, err = json.Marshal(body); err != nil {
			return ProviderCall{}, err
		}
		payload = bytes.NewReader(sent)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, payload)
	if err != nil {
		return ProviderCall{}, err
	}
	// Read back from the bytes sent, so a body given as raw JSON (core2's own bytes) counts too.
	var created ucloud.BulkRequest[ucloud.Job]
	var added []string // jobs this call made known, forgotten unless the create succeeds
	if method == http.MethodPost && isCreate(path) && json.Unmarshal(sent, &created) == nil {
		c.mu.Lock()
		for _, j := range created.Items {
			if _, known := c.jobs[j.ID]; !known {
				c.jobs[j.ID] = j
				added = append(added, j.ID)
			}
		}
		c.mu.Unlock()
	}
	succeeded := false
	defer func() {
		if succeeded {
			return
		}
		c.mu.Lock()
		for _, id := range added {
			delete(c.jobs, id)
			delete(c.transitions, id)
		}
		c.mu.Unlock()
	}()
	req.Header.Set("Authorization", "Bearer "+c.Token())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if username != "" {
		req.Header.Set("ucloud-username", base64.StdEncoding.EncodeToString([]byte(username)))
	}
	resp, err := (&http.Client{Timeout: ProviderTimeout}).Do(req)
	if err != nil {
		if timedOut(err) {
			return ProviderCall{TimedOut: true}, nil
		}
		return ProviderCall{}, fmt.Errorf("fake Core -> provider %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		if timedOut(err) {
			return ProviderCall{TimedOut: true}, nil
		}
		return ProviderCall{}, fmt.Errorf("fake Core -> provider %s: reading the answer: %w", path, err)
	}
	call := ProviderCall{Status: resp.StatusCode, Body: raw}
	succeeded = call.Status/100 == 2
	return call, nil
}

func isCreate(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	return strings.HasSuffix(path, "/jobs")
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// KnowsJob says whether Core knows the job (registered, put, or created through a call it saw succeed).
func (c *Core) KnowsJob(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.jobs[id]
	return ok
}
