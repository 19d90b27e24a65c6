package envtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ucloud-im/knative-im/shared/eventauth"
	"github.com/ucloud-im/knative-im/test/env/localenv"
)

// EventAudience is the audience status-report's tokens are issued for in the tests and in make run (in a
// cluster: the job-state Trigger's subscriber.audience, the same string).
const EventAudience = localenv.EventAudience

// MonitorServiceAccount is the monitor's ServiceAccount name.
const MonitorServiceAccount = localenv.MonitorServiceAccount

// EventSender is a sender of events with a real identity on the test apiserver: a ServiceAccount whose
// tokens the apiserver issues through its TokenRequest API.
type EventSender struct {
	Namespace, Name string
	// Subject is what its tokens say in sub: system:serviceaccount:<namespace>:<name>.
	Subject string
	// Tokens gives it tokens for Audience.
	Tokens   *eventauth.RequestedToken
	Audience string
}

// Token is a fresh token of the sender for its audience.
func (s EventSender) Token(t testing.TB) string {
	t.Helper()
	tok, err := s.Tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Policy is a receiver's policy that accepts eventType from this sender only.
func (s EventSender) Policy(eventType string) eventauth.Policy {
	return eventauth.Policy{Audience: s.Audience, Senders: map[string][]string{eventType: {s.Subject}}}
}

// MonitorSender creates, in a fresh namespace, the ServiceAccount ucloud-im-monitor, which sends job state
// events with tokens for EventAudience.
func (e *Env) MonitorSender(t testing.TB) EventSender {
	t.Helper()
	return e.ServiceAccountSender(t, e.Namespace(t), MonitorServiceAccount, EventAudience)
}

// ServiceAccountSender is the ServiceAccount namespace/name (created if missing) sending with tokens for
// audience.
func (e *Env) ServiceAccountSender(t testing.TB, namespace, name, audience string) EventSender {
	t.Helper()
	e.Cluster(t)
	ctx := context.Background()
	_, err := e.Clientset.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return EventSender{
		Namespace: namespace, Name: name, Subject: eventauth.ServiceAccountSubject(namespace, name), Audience: audience,
		Tokens: &eventauth.RequestedToken{Kube: e.Clientset, Namespace: namespace, ServiceAccount: name, Audience: audience},
	}
}

// ServiceAccountToken is a token the apiserver issues for namespace/name with the given audiences and
// lifetime (at least 10 minutes: the apiserver's minimum).
func (e *Env) ServiceAccountToken(t testing.TB, namespace, name string, audiences []string, lifetime time.Duration) string {
	t.Helper()
	e.Cluster(t)
	secs := int64(lifetime.Seconds())
	tr, err := e.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

// EventVerifier is a receiver's sender check against the test apiserver's service-account issuer, set up
// the way a function sets it up from its kubeconfig.
func (e *Env) EventVerifier(t testing.TB, p eventauth.Policy, o eventauth.Options) *eventauth.Verifier {
	t.Helper()
	e.Cluster(t)
	v, err := eventauth.NewFromCluster(context.Background(), e.Config, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ServiceAccountIssuer is the issuer named in the test apiserver's OIDC discovery document (what real
// service-account tokens carry in iss).
func (e *Env) ServiceAccountIssuer(t testing.TB) string {
	t.Helper()
	e.Cluster(t)
	client, err := rest.HTTPClientFor(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(strings.TrimSuffix(e.Config.Host, "/") + eventauth.DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Issuer == "" {
		t.Fatalf("discovery document: %v %+v", err, doc)
	}
	return doc.Issuer
}

// ForgedToken is a token with the given claims signed RS256 by a key of its own, not the cluster's: what
// someone without the cluster's signing key can make.
func ForgedToken(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "forged"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
