package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ucloud-im/knative-im/shared/metrics"
)

// send sends e; one whose row the monitor committed (stored) shares a send with the changes sent at the
// same time, or is not sent at all while status-report listens (waker); outside Run each is sent alone.
func (m *Monitor) send(ctx context.Context, e event.Event, stored, listening bool) error {
	if stored && m.wakes != nil {
		return m.wakes.send(ctx, e, listening)
	}
	err := m.Sink.Send(ctx, e)
	if err == nil {
		reason := metrics.EventResend
		if stored {
			reason = metrics.EventUnheard // outside Run: no listener is asked about
		}
		m.Metrics.EventSent(reason)
	}
	return err
}

// waker sends the events of changes whose outbox row the monitor committed (jobevents.MarkStored). Such an
// event only wakes status-report's drainer, which then delivers every row committed before it: one event
// sent after a row's commit serves that row, whichever change it names. So the changes that call send
// while one is on its way share the next: a group commit's changes, returning together, cost two sends
// instead of one each. Each caller returns once a send that began after its call was accepted (or failed:
// then every caller of that send gets the error and its change is sent again, unmarked, by the reconcile's
// retry).
//
// When status-report listened for the row (status.QueueWakeUp), the commit's notification woke its drainer
// and no event is sent, unless none was sent for keepAlive: Knative scales status-report on events.
type waker struct {
	sink      Sender
	keepAlive time.Duration
	// sent, when set, is told of each send accepted, with its reason (metrics.EventUnheard or EventKeepAlive).
	sent func(reason string)

	mu       sync.Mutex
	next     *wakeRound // the round the callers arriving now join; nil: none yet
	inflight bool       // a goroutine is sending rounds
	lastSend time.Time  // when the last round began
}

// wakeRound is one send and the callers it serves.
type wakeRound struct {
	e    event.Event // the first caller's event
	done chan struct{}
	err  error
	// heard: every caller's row was listened for (the send is only a keep-alive).
	heard bool
}

// send has e's row delivered: it returns once an event sent after this call was accepted, or at once when
// status-report listened for the row (the event, sent when none was within keepAlive, is then only a
// keep-alive).
func (w *waker) send(ctx context.Context, e event.Event, listening bool) error {
	w.mu.Lock()
	if listening && time.Since(w.lastSend) < w.keepAlive {
		w.mu.Unlock()
		return nil
	}
	if w.next == nil {
		w.next = &wakeRound{e: e, done: make(chan struct{}), heard: true}
	}
	r := w.next
	r.heard = r.heard && listening
	lead := !w.inflight
	w.inflight = true
	w.mu.Unlock()
	if lead {
		// One round, then whoever comes next is served by a goroutine: this caller goes on with its own
		// change. The round must not end with this caller's ctx: it serves the others too.
		if listening {
			go w.round(context.WithoutCancel(ctx))
		} else {
			w.round(context.WithoutCancel(ctx))
		}
	}
	if listening {
		// The row was listened for: the event is only a keep-alive, and its answer not the change's (a
		// sink that is down does not undo a delivery that needs no event).
		return nil
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// round sends the pending round, if any, and hands the next one to a goroutine.
func (w *waker) round(ctx context.Context) {
	w.mu.Lock()
	r := w.next
	w.next = nil
	w.lastSend = time.Now()
	w.mu.Unlock()
	if r != nil {
		r.err = w.sink.Send(ctx, r.e)
		if r.err == nil && w.sent != nil {
			reason := metrics.EventUnheard
			if r.heard {
				reason = metrics.EventKeepAlive
			}
			w.sent(reason)
		}
		close(r.done)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == nil {
		w.inflight = false
		return
	}
	go w.round(ctx)
}
