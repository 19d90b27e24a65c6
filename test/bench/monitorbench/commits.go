package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// commitProbe is the anchor for the pipeline's durable writes: while the steady state runs, a single-row
// INSERT is due every 20 ms on the same PostgreSQL (durable, as the benchmark runs it), and each is timed
// from when it was due to its commit. It is open-loop, as the changes are: a commit that stalls (a slow
// disk flush) does not hold back the next ones' start, so every commit due during a stall counts the wait,
// as every change arriving during it does (one commit at a time would record a 1 s stall once, where 50
// changes wait in it). A change reaches Core after at least one such commit (the monitor's intent, with the
// change's outbox row), so this p99 on this machine, now, is a floor no pipeline design with these
// guarantees goes below.
type commitProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	took   dist
	err    error
}

func startCommitProbe(ctx context.Context, databaseURL string) (*commitProbe, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 64 // commits due during a stall of a second, each on its own connection
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL)"); err != nil {
		pool.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &commitProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer pool.Close()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var due time.Time
			select {
			case <-ctx.Done():
				return
			case due = <-tick.C:
			}
			inflight.Go(func() {
				_, err := pool.Exec(ctx, "INSERT INTO bench_commit_probe (at) VALUES (now())")
				p.mu.Lock()
				defer p.mu.Unlock()
				if err == nil {
					p.took = append(p.took, time.Since(due))
				} else if ctx.Err() == nil {
					p.err = err
				}
			})
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
