package ucloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/tracing"
)

// RenewBefore is how long before its expiry a cached access token is replaced.
const RenewBefore = 3 * time.Minute

// StatusError is a call Core answered with an error status. 4xx errors are never retried.
type StatusError struct {
	Op     string
	Status int
	Body   Error
}

func (e *StatusError) Error() string {
	why := e.Body.Why
	if why == "" {
		why = http.StatusText(e.Status)
	}
	return fmt.Sprintf("UCloud/Core %s: %d %s", e.Op, e.Status, why)
}

// ErrUnavailable wraps the last error when Core could not be reached or kept answering 5xx.
var ErrUnavailable = errors.New("UCloud/Core is unavailable")

// ClientOptions configure a Client. BaseURL and RefreshToken are required.
type ClientOptions struct {
	BaseURL      string
	RefreshToken func() (string, error)
	HTTPClient   *http.Client
	// AttemptTimeout bounds one HTTP attempt (default 10 s); the caller's context bounds them all.
	AttemptTimeout time.Duration
	// MaxAttempts per call on 5xx or network errors (default 5).
	MaxAttempts int
	// BackoffBase is the first retry delay, doubled each time with jitter, capped at 5 s (default 100 ms).
	BackoffBase time.Duration
	// Now is the clock used to judge token expiry (default time.Now).
	Now func() time.Time
	// Metrics, when set, records every call (by call and outcome, with its latency) and every attempt.
	Metrics *metrics.Core
	// Tracing is the tracer provider of the calls' client spans (nil: the global one, see shared/tracing).
	Tracing trace.TracerProvider
}

// Client makes the IM -> Core control calls with a cached provider access token.
type Client struct {
	o ClientOptions

	mu        sync.Mutex
	token     string
	expiresAt time.Time
}

// NewClient checks the options and fills in defaults.
func NewClient(o ClientOptions) (*Client, error) {
	if o.BaseURL == "" {
		return nil, errors.New("ucloud: Core base URL is required")
	}
	if _, err := url.Parse(o.BaseURL); err != nil {
		return nil, fmt.Errorf("ucloud: bad Core base URL: %w", err)
	}
	if o.RefreshToken == nil {
		return nil, errors.New("ucloud: a refresh token source is required")
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{o: o}, nil
}

// BaseURL is Core's base URL.
func (c *Client) BaseURL() string { return c.o.BaseURL }

// UpdateJobs reports job updates: POST /api/jobs/control/update.
func (c *Client) UpdateJobs(ctx context.Context, items []ResourceUpdateAndID[JobUpdate]) error {
	return c.call(ctx, "jobs.control.update", http.MethodPost, "/api/jobs/control/update", BulkRequest[ResourceUpdateAndID[JobUpdate]]{Items: items}, nil, true)
}

// RegisterJobs registers provider-made jobs and returns their new ids, in order.
func (c *Client) RegisterJobs(ctx context.Context, items []ProviderRegisteredResource[JobSpecification]) ([]FindByStringID, error) {
	var resp BulkResponse[FindByStringID]
	if err := c.call(ctx, "jobs.control.register", http.MethodPost, "/api/jobs/control/register", BulkRequest[ProviderRegisteredResource[JobSpecification]]{Items: items}, &resp, true); err != nil {
		return nil, err
	}
	if len(resp.Responses) != len(items) {
		return nil, fmt.Errorf("UCloud/Core jobs.control.register: %d ids for %d jobs", len(resp.Responses), len(items))
	}
	return resp.Responses, nil
}

// FindJobByProviderID finds the job the provider registered under providerGeneratedID (jobs.control.browse
// with filterProviderIds); nil when Core has none. core2 refuses a repeated providerGeneratedId with 409,
// so this is how a provider learns the id of a job it registered before it could record the answer.
func (c *Client) FindJobByProviderID(ctx context.Context, providerGeneratedID string) (*Job, error) {
	q := url.Values{"itemsPerPage": {"10"}, "filterProviderIds": {providerGeneratedID}}
	var page PageV2[Job]
	if err := c.call(ctx, "jobs.control.browse", http.MethodGet, "/api/jobs/control/browse?"+q.Encode(), nil, &page, true); err != nil {
		return nil, err
	}
	var found *Job
	for i, j := range page.Items {
		if j.ProviderGeneratedID != providerGeneratedID {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("UCloud/Core jobs.control.browse: two jobs (%s, %s) registered as %q", found.ID, j.ID, providerGeneratedID)
		}
		found = &page.Items[i]
	}
	return found, nil
}

// KnownJobs says which of ids Core knows as this provider's jobs (jobs.control.browse with filterIds, in
// pages of 100 ids). A job Core does not list was never confirmed (Core gave up on the create) or deleted.
func (c *Client) KnownJobs(ctx context.Context, ids []string) (map[string]bool, error) {
	known := make(map[string]bool, len(ids))
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		q := url.Values{"itemsPerPage": {"250"}, "filterIds": {strings.Join(chunk, ",")}}
		// Only the ids are decoded: at 10,000 jobs (the monitor's first orphan sweep after a start) whole
		// jobs were most of that sweep's CPU.
		jobs, err := browseAll[struct {
			ID string `json:"id"`
		}](ctx, c, "jobs.control.browse", "/api/jobs/control/browse", q)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			known[j.ID] = true
		}
	}
	return known, nil
}

// browseAll reads every page of a browse call (Core's "next" token) with the query q.
func browseAll[T any](ctx context.Context, c *Client, op, path string, q url.Values) ([]T, error) {
	var all []T
	for {
		var page PageV2[T]
		if err := c.call(ctx, op, http.MethodGet, path+"?"+q.Encode(), nil, &page, true); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == nil || *page.Next == "" {
			return all, nil
		}
		q.Set("next", *page.Next)
	}
}

// RetrieveJob reads one job with its product and application.
func (c *Client) RetrieveJob(ctx context.Context, id string) (*Job, error) {
	q := url.Values{"id": {id}, "includeProduct": {"true"}, "includeApplication": {"true"}}
	var job Job
	if err := c.call(ctx, "jobs.control.retrieve", http.MethodGet, "/api/jobs/control/retrieve?"+q.Encode(), nil, &job, true); err != nil {
		return nil, err
	}
	return &job, nil
}

// accessToken returns the cached token, refreshing it when fewer than RenewBefore remain.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.expiresAt.Sub(c.o.Now()) > RenewBefore {
		return c.token, nil
	}
	refresh, err := c.o.RefreshToken()
	if err != nil {
		return "", fmt.Errorf("read the provider refresh token: %w", err)
	}
	var resp BulkResponse[AccessToken]
	body := BulkRequest[RefreshRequest]{Items: []RefreshRequest{{RefreshToken: refresh}}}
	if err := c.call(ctx, "auth.providers.refresh", http.MethodPost, "/auth/providers/refresh", body, &resp, false); err != nil {
		return "", err
	}
	if len(resp.Responses) != 1 || resp.Responses[0].AccessToken == "" {
		return "", errors.New("UCloud/Core auth.providers.refresh: no access token in the answer")
	}
	tok := resp.Responses[0].AccessToken
	// Core signed it; we only need its expiry to know when to renew, so it is read, not verified.
	claims := jwt.RegisteredClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		return "", fmt.Errorf("UCloud/Core auth.providers.refresh: access token is not a JWT: %w", err)
	}
	if claims.ExpiresAt == nil {
		return "", errors.New("UCloud/Core auth.providers.refresh: access token has no expiry")
	}
	c.token, c.expiresAt = tok, claims.ExpiresAt.Time
	return tok, nil
}

func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// call is send, measured and traced: one client span per call (its attempts are events on it), and
// every attempt carries the span's traceparent, so Core's handling joins the caller's trace.
func (c *Client) call(ctx context.Context, op, method, path string, in, out any, authenticated bool) error {
	began := time.Now()
	ctx, span := tracing.Provider(c.o.Tracing).Tracer(tracerName).Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.path", strings.SplitN(path, "?", 2)[0])))
	err := c.send(ctx, op, method, path, in, out, authenticated)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	c.o.Metrics.ObserveCall(op, outcome(err), time.Since(began))
	return err
}

const tracerName = "github.com/ucloud-im/knative-im/shared/ucloud"

// outcome classifies a call's result for the metrics.
func outcome(err error) string {
	var refused *StatusError
	switch {
	case err == nil:
		return metrics.OutcomeOK
	case errors.As(err, &refused) && refused.Status < 500:
		return metrics.OutcomeRefused
	}
	return metrics.OutcomeUnavailable
}

// send sends one request with retries: network errors and 5xx back off and retry, 4xx return at once,
// and a 401 on an authenticated call renews the token once (Core may have rotated its keys).
func (c *Client) send(ctx context.Context, op, method, path string, in, out any, authenticated bool) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s: %w", op, err)
		}
	}
	var last error
	renewed := false
	for attempt := 0; attempt < c.o.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, attempt); err != nil {
				return fmt.Errorf("%w: %s: %w (last error: %v)", ErrUnavailable, op, err, last)
			}
		}
		var tok string
		if authenticated {
			var err error
			if tok, err = c.accessToken(ctx); err != nil {
				return err
			}
		}
		status, body, err := c.attempt(ctx, method, path, payload, tok)
		c.o.Metrics.ObserveAttempt(op, status)
		trace.SpanFromContext(ctx).AddEvent("attempt", trace.WithAttributes(attribute.Int("http.response.status_code", status)))
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", op, ctx.Err())
			}
			last = err
			continue
		case status >= 500:
			last = &StatusError{Op: op, Status: status, Body: decodeError(body)}
			continue
		case status == http.StatusUnauthorized && authenticated && !renewed:
			c.dropToken(tok)
			renewed = true
			attempt-- // a renewal is not a failed attempt
			continue
		case status >= 400:
			return &StatusError{Op: op, Status: status, Body: decodeError(body)}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("decode the answer of %s: %w", op, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s failed %d times: %w", ErrUnavailable, op, c.o.MaxAttempts, last)
}

func (c *Client) attempt(ctx context.Context, method, path string, payload []byte, token string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.AttemptTimeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.o.BaseURL+path, body)
	if err != nil {
		return 0, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	tracing.Inject(ctx, req.Header)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, raw, nil
}

func (c *Client) sleep(ctx context.Context, attempt int) error {
	d := c.o.BackoffBase << (attempt - 1)
	if d > 5*time.Second || d <= 0 {
		d = 5 * time.Second
	}
	d = d/2 + rand.N(d/2+1) // jitter, so many instances do not retry in step
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func decodeError(body []byte) Error {
	var e Error
	if json.Unmarshal(body, &e) != nil || e.Why == "" {
		e.Why = strings.TrimSpace(string(body))
		if len(e.Why) > 200 {
			e.Why = e.Why[:200]
		}
	}
	return e
}

// RefreshTokenFile reads the provider refresh token from path at each use (a mounted Secret may be
// rotated), trimmed of the line break such files end with.
func RefreshTokenFile(path string) func() (string, error) {
	return func() (string, error) {
		raw, err := os.ReadFile(path)
		return strings.TrimSpace(string(raw)), err
	}
}
