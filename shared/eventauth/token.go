package eventauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TokenSource gives a sender the token for its next event.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// FileToken reads the token from a file that something else keeps fresh: in a cluster the SinkBinding
// mounts its OIDC token Secret at /oidc/token and Knative renews it before it expires (the kubelet then
// updates the file). The file is read again when the copy in memory is older than maxAge.
type FileToken struct {
	Path   string
	MaxAge time.Duration

	mu    sync.Mutex
	token string
	read  time.Time
}

// NewFileToken reads path once, so a missing or empty file is an error at start-up, not at the first event.
func NewFileToken(path string) (*FileToken, error) {
	f := &FileToken{Path: path, MaxAge: 30 * time.Second}
	if _, err := f.Token(context.Background()); err != nil {
		return nil, err
	}
	return f, nil
}

// Token implements TokenSource. A file that cannot be read again keeps the last token in use (the sink
// refuses it once it expires, and the sender retries).
func (f *FileToken) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && time.Since(f.read) < f.MaxAge {
		return f.token, nil
	}
	raw, err := os.ReadFile(f.Path)
	token := strings.TrimSpace(string(raw))
	if err == nil && token == "" {
		err = errors.New("the file is empty")
	}
	if err != nil {
		if f.token != "" {
			return f.token, nil
		}
		return "", fmt.Errorf("event token file %s: %w", f.Path, err)
	}
	f.token, f.read = token, time.Now()
	return f.token, nil
}

// RequestedToken asks the apiserver's TokenRequest API for tokens of one ServiceAccount and audience, and
// renews one when less than a fifth of its life is left. make run uses it, so the receiver's check runs
// against real tokens without Knative; the caller needs create on serviceaccounts/token for that account.
type RequestedToken struct {
	Kube                      kubernetes.Interface
	Namespace, ServiceAccount string
	Audience                  string
	// Lifetime asked for (1 h by default; the apiserver's minimum is 10 minutes).
	Lifetime time.Duration

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

// Token implements TokenSource.
func (r *RequestedToken) Token(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.token != "" && time.Now().Before(r.renewAt) {
		return r.token, nil
	}
	life := r.Lifetime
	if life <= 0 {
		life = time.Hour
	}
	secs := int64(life.Seconds())
	tr, err := r.Kube.CoreV1().ServiceAccounts(r.Namespace).CreateToken(ctx, r.ServiceAccount, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{Audiences: []string{r.Audience}, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for ServiceAccount %s/%s: %w", r.Namespace, r.ServiceAccount, err)
	}
	issued := time.Now()
	r.token = tr.Status.Token
	r.renewAt = issued.Add(tr.Status.ExpirationTimestamp.Sub(issued) * 4 / 5)
	return r.token, nil
}
