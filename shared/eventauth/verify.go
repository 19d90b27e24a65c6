// Package eventauth proves who sent a CloudEvent, the way Knative Eventing's sender identity (OIDC) does:
// every event carries `Authorization: Bearer <ServiceAccount token>`, issued by the cluster's own
// service-account issuer for the receiver's audience. The receiver verifies the token locally against the
// apiserver's OIDC discovery document and signing keys (JWKS), then checks the token's subject against an
// allow-list per event type. It also gives senders their token (a file Knative keeps fresh, or the
// TokenRequest API).
package eventauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"k8s.io/client-go/rest"
)

// The apiserver's OIDC issuer discovery endpoints (ServiceAccountIssuerDiscovery). Every authenticated
// ServiceAccount may read them through the default ClusterRoleBinding system:service-account-issuer-discovery.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/openid/v1/jwks"
)

// ErrUnauthenticated is a request without a valid token for this receiver: none, malformed, signed by
// another key, issued by another issuer, for another audience, or expired.
var ErrUnauthenticated = errors.New("event sender not authenticated")

// Policy is what a receiver accepts.
type Policy struct {
	// Audience is the audience every token must be issued for (the receiver's own).
	Audience string
	// Senders lists, per CloudEvent type, the token subjects (system:serviceaccount:<ns>:<name>) allowed
	// to send it. A type not listed is accepted from nobody.
	Senders map[string][]string
}

func (p Policy) validate() error {
	if strings.TrimSpace(p.Audience) == "" {
		return errors.New("eventauth: the receiver's audience is empty")
	}
	if len(p.Senders) == 0 {
		return errors.New("eventauth: no event type has an allowed sender")
	}
	for typ, subs := range p.Senders {
		if typ == "" || len(subs) == 0 || slices.Contains(subs, "") {
			return fmt.Errorf("eventauth: event type %q has no or an empty allowed sender", typ)
		}
	}
	return nil
}

// Verifier checks the senders of events for one receiver.
type Verifier struct {
	policy Policy
	tokens *oidc.IDTokenVerifier
}

// Options tune a Verifier.
type Options struct {
	// Now is the clock tokens' expiry is judged by (time.Now when nil).
	Now func() time.Time
}

// New verifies tokens issued by issuer and signed by keys.
func New(issuer string, keys oidc.KeySet, p Policy, o Options) (*Verifier, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &Verifier{policy: p, tokens: oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID: p.Audience,
		// What a kube-apiserver signs service-account tokens with (RSA or ECDSA keys).
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256},
		Now:                  o.Now,
	})}, nil
}

// NewFromCluster verifies tokens of the cluster cfg points at: it reads the issuer from the apiserver's
// discovery document and the signing keys from its JWKS endpoint, with cfg's CA and credentials (in a
// pod, the function's own ServiceAccount token), and fails if it cannot. The keys are read again when a
// token names a key not seen yet (the cluster rotated its keys), at most every 10 seconds.
func NewFromCluster(ctx context.Context, cfg *rest.Config, p Policy, o Options) (*Verifier, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("eventauth: client for the apiserver: %w", err)
	}
	base := strings.TrimSuffix(cfg.Host, "/")
	issuer, err := discoverIssuer(ctx, client, base)
	if err != nil {
		return nil, err
	}
	// The keys are read from the apiserver itself, not from the discovery document's jwks_uri, which
	// names the issuer's public address (often not reachable from inside, and never from make run).
	keys, err := newClusterKeys(ctx, client, base+JWKSPath)
	if err != nil {
		return nil, err
	}
	return New(issuer, keys, p, o)
}

func discoverIssuer(ctx context.Context, client *http.Client, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+DiscoveryPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("eventauth: service-account issuer discovery: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("eventauth: service-account issuer discovery %s: %s %s", base+DiscoveryPath, resp.Status, strings.TrimSpace(string(raw)))
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Issuer == "" {
		return "", fmt.Errorf("eventauth: service-account issuer discovery %s: no issuer in %q", base+DiscoveryPath, raw)
	}
	return doc.Issuer, nil
}

// Sender verifies an Authorization header and returns the token's subject. Every failure wraps
// ErrUnauthenticated and says why (for the log; the token itself is never in it).
func (v *Verifier) Sender(ctx context.Context, authorization string) (string, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	id, err := v.tokens.Verify(ctx, strings.TrimSpace(token))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if id.Subject == "" {
		return "", fmt.Errorf("%w: the token has no subject", ErrUnauthenticated)
	}
	return id.Subject, nil
}

// Allowed says whether sender may send events of type typ; with typ "" whether it may send any event at
// all (the check made before the event is read).
func (v *Verifier) Allowed(sender, typ string) bool {
	if typ != "" {
		return slices.Contains(v.policy.Senders[typ], sender)
	}
	for _, subs := range v.policy.Senders {
		if slices.Contains(subs, sender) {
			return true
		}
	}
	return false
}

// ServiceAccountSubject is the token subject of a ServiceAccount.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}
