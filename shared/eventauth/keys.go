package eventauth

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// clusterKeys is the apiserver's service-account signing keys, read from its JWKS endpoint. A token no
// key in memory verifies makes it read them again (the cluster rotated its keys), but at most once per
// minRefresh: otherwise every forged token a job pod sends would cost a request to the apiserver.
// (go-oidc's RemoteKeySet refetches on every unknown signature.)
type clusterKeys struct {
	client     *http.Client
	url        string
	minRefresh time.Duration

	mu      sync.Mutex
	keys    oidc.StaticKeySet
	fetched time.Time
}

func newClusterKeys(ctx context.Context, client *http.Client, url string) (*clusterKeys, error) {
	k := &clusterKeys{client: client, url: url, minRefresh: 10 * time.Second}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// VerifySignature implements oidc.KeySet.
func (k *clusterKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.mu.Lock()
	keys := k.keys
	stale := time.Since(k.fetched) >= k.minRefresh
	k.mu.Unlock()
	payload, err := keys.VerifySignature(ctx, jwt)
	if err == nil || !stale {
		return payload, err
	}
	k.mu.Lock()
	if time.Since(k.fetched) >= k.minRefresh {
		if rerr := k.refresh(ctx); rerr != nil {
			k.mu.Unlock()
			return nil, fmt.Errorf("%w (and the keys could not be read again: %w)", err, rerr)
		}
	}
	keys = k.keys
	k.mu.Unlock()
	return keys.VerifySignature(ctx, jwt)
}

// refresh reads the keys; the caller holds mu (or has not shared k yet). A failed read counts as a read
// for the throttle too.
func (k *clusterKeys) refresh(ctx context.Context) error {
	k.fetched = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("eventauth: service-account keys: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("eventauth: service-account keys %s: %s", k.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("eventauth: service-account keys %s: %w", k.url, err)
	}
	var pub []crypto.PublicKey
	for _, key := range set.Keys {
		if key.Valid() && key.IsPublic() && key.Use != "enc" {
			pub = append(pub, key.Key)
		}
	}
	if len(pub) == 0 {
		return fmt.Errorf("eventauth: service-account keys %s: no public signing key", k.url)
	}
	k.keys = oidc.StaticKeySet{PublicKeys: pub}
	return nil
}
