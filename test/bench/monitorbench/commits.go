package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// commitProbe is the anchor for the pipeline's durable writes: while the steady state runs it commits one
// single-row INSERT at a time, every 20 ms, on the same PostgreSQL (durable, as the benchmark runs it), and
// times each. A change reaches Core after at least one such commit (the monitor's intent, with the change's
// outbox row), so its p99 on this machine, now, is a floor no pipeline design with these guarantees goes
// below.
type commitProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	took   dist
	err    error
}

func startCommitProbe(ctx context.Context, databaseURL string) (*commitProbe, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL)"); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &commitProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			began := time.Now()
			if _, err := conn.Exec(ctx, "INSERT INTO bench_commit_probe (at) VALUES (now())"); err != nil {
				if ctx.Err() == nil {
					p.mu.Lock()
					p.err = err
					p.mu.Unlock()
				}
				return
			}
			p.mu.Lock()
			p.took = append(p.took, time.Since(began))
			p.mu.Unlock()
		}
	}()
	return p, nil
}

// stop ends the probe and answers the commit times it measured.
func (p *commitProbe) stop() (dist, error) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.Sort(p.took)
	return p.took, p.err
}

// brief is p50/p99/max of commit times.
func (d dist) brief() string {
	if len(d) == 0 {
		return "no samples"
	}
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s of %d", r(d[len(d)/2]), r(d[len(d)*99/100]), r(d[len(d)-1]), len(d))
}
