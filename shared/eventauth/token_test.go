package eventauth_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ucloud-im/knative-im/shared/eventauth"
)

// The SinkBinding's token file is renewed in place: the sender uses the new token once its copy is older
// than MaxAge, keeps the last one while the file cannot be read, and refuses to start without one.
func TestFileTokenFollowsRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token")
	if _, err := eventauth.NewFileToken(path); err == nil {
		t.Fatal("started without a token file")
	}
	if err := os.WriteFile(path, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := eventauth.NewFileToken(path); err == nil {
		t.Fatal("started with an empty token file")
	}
	if err := os.WriteFile(path, []byte("token-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := eventauth.NewFileToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("token-b"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Token(ctx); got != "token-a" {
		t.Fatalf("re-read before MaxAge: %q", got)
	}
	f.MaxAge = 0
	if got, _ := f.Token(ctx); got != "token-b" {
		t.Fatalf("after rotation: %q, want token-b", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Token(ctx); got != "token-b" || err != nil {
		t.Fatalf("file gone: %q %v, want the last token", got, err)
	}
}
