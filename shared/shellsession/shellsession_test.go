package shellsession_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/shellsession"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { envtest.Main(m, &env) }

// A session issued by job-control's role is taken once by job-streams' role, even by ten instances racing
// for it, and gives back exactly the job, rank and user it was issued for.
func TestASessionIsTakenOnceByOneOfManyInstances(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	issuer := shellsession.Store{Pool: db.Open(t, store.FnJobControl).Pool}
	taker := shellsession.Store{Pool: db.Open(t, store.FnJobStreams).Pool}
	ctx := context.Background()
	want := shellsession.Session{JobID: "4711", Rank: 1, Username: "alice#1234"}
	id, err := issuer.Issue(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var won []shellsession.Session
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := taker.Take(ctx, id)
			if err == nil {
				mu.Lock()
				won = append(won, s)
				mu.Unlock()
			} else if !errors.Is(err, shellsession.ErrNoSession) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || won[0] != want {
		t.Fatalf("takers that won: %+v, want exactly one %+v", won, want)
	}
	// job-control cannot read sessions back, nor take one.
	if _, err := issuer.Take(ctx, id); err == nil || errors.Is(err, shellsession.ErrNoSession) {
		t.Fatalf("job-control's role took a session: %v", err)
	}
}

// Sessions expire unused, and the sweep removes what expired before its cutoff, used or not, and keeps
// the rest.
func TestSessionsExpireAndAreSwept(t *testing.T) {
	db := storetest.New(t, env.Database(t))
	ctx := context.Background()
	short := shellsession.Store{Pool: db.Open(t, store.FnJobControl).Pool, TTL: 300 * time.Millisecond}
	long := shellsession.Store{Pool: short.Pool, TTL: time.Hour}
	taker := shellsession.Store{Pool: db.Open(t, store.FnJobStreams).Pool}
	expired, err := short.Issue(ctx, shellsession.Session{JobID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := long.Issue(ctx, shellsession.Session{JobID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := taker.Take(ctx, expired); !errors.Is(err, shellsession.ErrNoSession) {
		t.Fatalf("an expired session: %v", err)
	}
	n, err := taker.Sweep(ctx, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want the expired one", n, err)
	}
	if s, err := taker.Take(ctx, fresh); err != nil || s.JobID != "2" {
		t.Fatalf("the fresh session after the sweep: %+v %v", s, err)
	}
}
