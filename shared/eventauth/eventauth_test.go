package eventauth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/client-go/rest"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

const jobStateType = "com.github.ucloud-im.job.state.changed"

// A receiver runs as a ServiceAccount with no Role at all (status-report has none): the default
// system:service-account-issuer-discovery binding lets it read the issuer's discovery document and keys,
// so it can verify senders with nothing but its own token and the cluster's CA.
func TestAServiceAccountWithoutRolesVerifiesSenders(t *testing.T) {
	ns := env.Namespace(t)
	receiver := env.ServiceAccountSender(t, ns, "receiver", "unused")
	monitor := env.ServiceAccountSender(t, ns, "ucloud-im-monitor", envtest.EventAudience)
	// The test apiserver's kubeconfig, without its admin credentials: only the receiver's own token.
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = env.ServiceAccountToken(t, ns, receiver.Name, nil, 10*time.Minute)
	v, err := eventauth.NewFromCluster(context.Background(), cfg, monitor.Policy(jobStateType), eventauth.Options{})
	if err != nil {
		t.Fatalf("discovery as a ServiceAccount without roles: %v", err)
	}
	sender, err := v.Sender(context.Background(), "Bearer "+monitor.Token(t))
	if err != nil || sender != monitor.Subject {
		t.Fatalf("the monitor's token: %q %v (the keys could not be fetched?)", sender, err)
	}
	if !v.Allowed(sender, jobStateType) || !v.Allowed(sender, "") || v.Allowed(sender, "com.github.ucloud-im.iapp.update") {
		t.Fatal("the allow-list is not per event type")
	}
	// Without credentials the documents are not served (the binding is for ServiceAccounts), and the
	// receiver does not start rather than accept events it cannot check.
	anon := rest.AnonymousClientConfig(env.Config)
	if _, err := eventauth.NewFromCluster(context.Background(), anon, monitor.Policy(jobStateType), eventauth.Options{}); err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Fatalf("discovery without credentials: %v, want 403", err)
	}
}

// Tokens the cluster really issues, refused for what they are (the forged ones are in shared/status).
func TestRealTokensOfTheWrongKindAreRefused(t *testing.T) {
	ns := env.Namespace(t)
	monitor := env.ServiceAccountSender(t, ns, "ucloud-im-monitor", envtest.EventAudience)
	v := env.EventVerifier(t, monitor.Policy(jobStateType), eventauth.Options{})
	ctx := context.Background()
	tests := []struct {
		name, authorization string
		want                error
	}{
		{"another audience", "Bearer " + env.ServiceAccountToken(t, ns, monitor.Name, []string{"eventing.knative.dev/broker/ucloud-im/default"}, 10*time.Minute), eventauth.ErrUnauthenticated},
		{"the apiserver's audience", "Bearer " + env.ServiceAccountToken(t, ns, monitor.Name, nil, 10*time.Minute), eventauth.ErrUnauthenticated},
		{"lower-case scheme", "bearer " + monitor.Token(t), nil},
		{"no scheme", monitor.Token(t), eventauth.ErrUnauthenticated},
	}
	for _, tc := range tests {
		_, err := v.Sender(ctx, tc.authorization)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	other := env.ServiceAccountToken(t, ns, "default", []string{envtest.EventAudience}, 10*time.Minute)
	sender, err := v.Sender(ctx, "Bearer "+other)
	if err != nil || v.Allowed(sender, jobStateType) || v.Allowed(sender, "") {
		t.Fatalf("another ServiceAccount's valid token: sender %q, err %v, allowed %v", sender, err, v.Allowed(sender, jobStateType))
	}
}

func TestPolicyMustNameAnAudienceAndSenders(t *testing.T) {
	for name, p := range map[string]eventauth.Policy{
		"no audience":    {Senders: map[string][]string{jobStateType: {"x"}}},
		"no senders":     {Audience: "a"},
		"empty sender":   {Audience: "a", Senders: map[string][]string{jobStateType: {""}}},
		"type, nobody":   {Audience: "a", Senders: map[string][]string{jobStateType: nil}},
		"nameless type":  {Audience: "a", Senders: map[string][]string{"": {"x"}}},
		"blank audience": {Audience: " ", Senders: map[string][]string{jobStateType: {"x"}}},
	} {
		if _, err := eventauth.New("https://issuer", nil, p, eventauth.Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// countingTransport counts the requests for the signing keys.
type countingTransport struct {
	next http.RoundTripper
	jwks *atomic.Int32
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == eventauth.JWKSPath {
		c.jwks.Add(1)
	}
	return c.next.RoundTrip(r)
}

// A flood of forged tokens (right issuer, audience and subject; another key) does not become a flood of
// requests to the apiserver for its keys, and the monitor's real tokens still verify meanwhile.
func TestForgedTokensDoNotMakeTheReceiverHammerTheAPIServer(t *testing.T) {
	ns := env.Namespace(t)
	monitor := env.ServiceAccountSender(t, ns, "ucloud-im-monitor", envtest.EventAudience)
	var fetches atomic.Int32
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, jwks: &fetches} }
	v, err := eventauth.NewFromCluster(context.Background(), cfg, monitor.Policy(jobStateType), eventauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	issuer := env.ServiceAccountIssuer(t)
	for range 50 {
		forged := envtest.ForgedToken(t, jwt.MapClaims{"iss": issuer, "aud": envtest.EventAudience, "sub": monitor.Subject,
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
		if _, err := v.Sender(context.Background(), "Bearer "+forged); !errors.Is(err, eventauth.ErrUnauthenticated) {
			t.Fatalf("forged token: %v", err)
		}
		if sender, err := v.Sender(context.Background(), "Bearer "+monitor.Token(t)); err != nil || sender != monitor.Subject {
			t.Fatalf("the monitor's token among forged ones: %q %v", sender, err)
		}
	}
	if n := fetches.Load(); n > 2 {
		t.Fatalf("50 forged tokens made %d requests for the keys, want at most 2 (start-up, one refresh)", n)
	}
}
