// Package fakecore is a stand-in for UCloud/Core in tests and in `make run`. It owns an RSA key pair and
// signs the tokens it sends to the IM exactly as Core does, serves the provider token refresh and the
// /api/jobs/control/* calls, decodes every request strictly against the wire format (an unknown field, a
// wrong type or a missing required value is a violation, reported to the test), records what it received,
// and can be told to fail or stall for fault tests.
package fakecore

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucloud-im/knative-im/shared/coreauth"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Reporter receives wire-format violations; *testing.T is one. Nil logs nothing but still records them.
type Reporter interface {
	Errorf(format string, args ...any)
}

// Options configure a fake Core. Everything is optional.
type Options struct {
	// Key signs every token; a fresh 2048-bit key when nil.
	Key *rsa.PrivateKey
	// RefreshToken is the provider's long-lived secret; random when empty.
	RefreshToken string
	// AccessTokenTTL is the lifetime of the access tokens it hands out (default 10 min).
	AccessTokenTTL time.Duration
	// ProviderID is the provider this Core knows the IM as (default "k8s"): its access tokens name it, and
	// it may register jobs only for its own products.
	ProviderID string
	// RequireKnownJobs makes job updates behave exactly as core2's: a batch naming a job Core does not know
	// (neither registered, put, nor created through CallProvider) is refused whole with 404.
	RequireKnownJobs bool
	// Addr to listen on (default 127.0.0.1:0).
	Addr     string
	Reporter Reporter
	// Log, when set, gets one line per request (make run).
	Log func(format string, args ...any)
}

// Request is one call the fake received, decoded.
type Request struct {
	Method, Path string
	Body         []byte
	At           time.Time
}

type fault struct {
	status int
	delay  time.Duration
	times  int
	until  time.Time // when set, the fault holds until then instead of for a number of calls
}

// Core is a running fake UCloud/Core.
type Core struct {
	o   Options
	srv *httptest.Server

	mu           sync.Mutex
	received     []Request
	violations   []string
	faults       map[string][]*fault
	updates      []ucloud.ResourceUpdateAndID[ucloud.JobUpdate]
	registered   []ucloud.ProviderRegisteredResource[ucloud.JobSpecification]
	jobs         map[string]ucloud.Job
	byProviderID map[string]string
	nextID       int
	refreshes    int
	products     []ucloud.ProductV2
	transitions  map[string][]ucloud.JobState
	// productCreates counts accepted products.v2.create calls.
	productCreates int
	acct           accountingState
	// book holds drives and projects (drives.go).
	book driveBook
}

// New starts a fake Core on loopback.
func New(o Options) (*Core, error) {
	if o.Key == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		o.Key = key
	}
	if o.RefreshToken == "" {
		o.RefreshToken = "refresh-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if o.AccessTokenTTL <= 0 {
		o.AccessTokenTTL = 10 * time.Minute
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.ProviderID == "" {
		o.ProviderID = "k8s"
	}
	c := &Core{o: o, faults: map[string][]*fault{}, jobs: map[string]ucloud.Job{}, byProviderID: map[string]string{}, nextID: 5000,
		transitions: map[string][]ucloud.JobState{}}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("fake Core: listen: %w", err)
	}
	c.srv = httptest.NewUnstartedServer(c.routes())
	c.srv.Listener.Close()
	c.srv.Listener = ln
	c.srv.Start()
	return c, nil
}

// URL is Core's base URL (UCLOUD_CORE_URL).
func (c *Core) URL() string { return c.srv.URL }

// Close stops the server.
func (c *Core) Close() { c.srv.Close() }

// RefreshToken is the provider's refresh token (UCLOUD_REFRESH_TOKEN_FILE's content).
func (c *Core) RefreshToken() string { return c.o.RefreshToken }

// PublicKeyPEM is Core's public key as the IM is given it (UCLOUD_CORE_PUBLIC_KEY_FILE's content).
func (c *Core) PublicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&c.o.Key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TokenTTL is the lifetime of every token core2 signs.
const TokenTTL = 10 * time.Minute

// Claims are the claims of a token Core sends to providers, as core2 signs them
// (foundation.ProviderRefreshAsOrchestrator): valid for ten minutes from now.
func Claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": coreauth.Issuer, "sub": coreauth.Subject, "role": coreauth.Role, "principalType": "service",
		"aud": []string{"all:write"}, "iat": now.Unix(), "exp": now.Add(TokenTTL).Unix(),
	}
}

// Token signs a Core -> IM token, as Core does, after applying the modifications (tests use them to make
// the bad tokens).
func (c *Core) Token(modify ...func(jwt.MapClaims)) string {
	claims := Claims()
	for _, m := range modify {
		m(claims)
	}
	return c.Sign(jwt.SigningMethodRS256, claims)
}

// Sign signs claims with Core's key and the given RSA method.
func (c *Core) Sign(method jwt.SigningMethod, claims jwt.Claims) string {
	s, err := jwt.NewWithClaims(method, claims).SignedString(c.o.Key)
	if err != nil {
		panic(fmt.Sprintf("fake Core: sign: %v", err))
	}
	return s
}

// Fail makes the next `times` calls to path answer status (a 5xx for fault tests).
func (c *Core) Fail(path string, status, times int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[path] = append(c.faults[path], &fault{status: status, times: times})
}

// FailFor makes every call to path answer status for d (an outage of Core).
func (c *Core) FailFor(path string, status int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[path] = append([]*fault{{status: status, until: time.Now().Add(d)}}, c.faults[path]...)
}

// Stall makes the next `times` calls to path wait d before answering (timeouts).
func (c *Core) Stall(path string, d time.Duration, times int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[path] = append(c.faults[path], &fault{delay: d, times: times})
}

// PutJob stores a job that /api/jobs/control/retrieve then returns.
func (c *Core) PutJob(j ucloud.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jobs[j.ID] = j
}

// Received lists every request in arrival order.
func (c *Core) Received() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.received...)
}

// Calls counts the requests to path received so far.
func (c *Core) Calls(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.received {
		if r.Path == path {
			n++
		}
	}
	return n
}

// Updates lists the job updates accepted, in order.
func (c *Core) Updates() []ucloud.ResourceUpdateAndID[ucloud.JobUpdate] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ucloud.ResourceUpdateAndID[ucloud.JobUpdate](nil), c.updates...)
}

// Registered lists the jobs registered, in order; the i-th got id 5000+i. A repeated providerGeneratedId
// is refused with 409, as core2 does, and not listed again.
func (c *Core) Registered() []ucloud.ProviderRegisteredResource[ucloud.JobSpecification] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ucloud.ProviderRegisteredResource[ucloud.JobSpecification](nil), c.registered...)
}

// Transitions lists the state changes Core applied to a job it knows, in order (updates Core ignored by
// its rules, and updates of jobs it does not know, are not listed).
func (c *Core) Transitions(id string) []ucloud.JobState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ucloud.JobState(nil), c.transitions[id]...)
}

// Refreshes counts successful token refreshes.
func (c *Core) Refreshes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshes
}

// Violations lists the wire-format violations seen.
func (c *Core) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

func (c *Core) violation(r *http.Request, format string, args ...any) {
	msg := fmt.Sprintf("fake Core: %s %s: ", r.Method, r.URL.Path) + fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.violations = append(c.violations, msg)
	c.mu.Unlock()
	if c.o.Reporter != nil {
		c.o.Reporter.Errorf("%s", msg)
	}
	if c.o.Log != nil {
		c.o.Log("VIOLATION %s", msg)
	}
}

// ClearFaults drops every queued failure and stall.
func (c *Core) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.faults)
}

// TB is the part of testing.TB Start needs.
type TB interface {
	Reporter
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start runs a fake Core for one test: violations fail the test, and it stops when the test ends.
func Start(t TB) *Core {
	t.Helper()
	c, err := New(Options{Reporter: t})
	if err != nil {
		t.Fatalf("fake Core: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Client is a Core client for this fake with its refresh token; o's other settings are kept.
func (c *Core) Client(o ucloud.ClientOptions) (*ucloud.Client, error) {
	o.BaseURL = c.URL()
	o.RefreshToken = func() (string, error) { return c.RefreshToken(), nil }
	return ucloud.NewClient(o)
}
