package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// gateSink records each send and holds it until the test releases it, with the answer it is given.
type gateSink struct {
	mu      sync.Mutex
	log     []string // "send <id>" when a send begins
	release chan error
}

func (g *gateSink) Send(ctx context.Context, e event.Event) error {
	g.mu.Lock()
	g.log = append(g.log, "send "+e.ID())
	g.mu.Unlock()
	return <-g.release
}

func (g *gateSink) record(s string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.log = append(g.log, s)
}

// Changes whose events are sent while one is on its way share the next send, and each returns only after
// a send that began after its own call: with the answer of that send.
func TestWakeUpsSentMeanwhileShareTheNextSend(t *testing.T) {
	for _, second := range []error{nil, errors.New("sink refused")} {
		t.Run(fmt.Sprint(second), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sink := &gateSink{release: make(chan error)}
				w := &waker{sink: sink}
				answers := map[string]error{}
				var mu sync.Mutex
				call := func(id string) {
					e := event.New()
					e.SetID(id)
					sink.record("call " + id)
					err := w.send(context.Background(), e, false)
					mu.Lock()
					answers[id] = err
					mu.Unlock()
					sink.record("return " + id)
				}
				go call("a")
				synctest.Wait() // a's send is on its way
				for _, id := range []string{"b", "c", "d"} {
					go call(id)
				}
				synctest.Wait() // b, c and d wait
				sink.release <- nil
				synctest.Wait() // a returned; one send for b, c and d is on its way
				sink.release <- second
				synctest.Wait()

				var sends []string
				for _, l := range sink.log {
					if len(l) > 5 && l[:5] == "send " {
						sends = append(sends, l)
					}
				}
				if len(sends) != 2 || sends[0] != "send a" {
					t.Fatalf("sends %v, want a's, then one for b, c and d (log %v)", sends, sink.log)
				}
				want := map[string]error{"a": nil, "b": second, "c": second, "d": second}
				if fmt.Sprint(answers) != fmt.Sprint(want) {
					t.Fatalf("answers %v, want %v", answers, want)
				}
				// Each caller's return follows a send that began after its call.
				for _, id := range []string{"a", "b", "c", "d"} {
					c, r := slices.Index(sink.log, "call "+id), slices.Index(sink.log, "return "+id)
					served := false
					for i := c + 1; i < r; i++ {
						served = served || len(sink.log[i]) > 5 && sink.log[i][:5] == "send "
					}
					if !served {
						t.Fatalf("%s returned without a send begun after its call: %v", id, sink.log)
					}
				}
			})
		})
	}
}

// While status-report listens for the rows (the commit's notification wakes its drainer), a change's event
// is sent only when none was for keepAlive: Knative keeps status-report up on those. Without a listener
// every change is sent.
func TestListenedChangesSendOnlyAKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &gateSink{release: make(chan error, 100)}
		for range 100 {
			sink.release <- nil
		}
		var reasons []string
		w := &waker{sink: sink, keepAlive: 5 * time.Second, sent: func(r string) { reasons = append(reasons, r) }}
		call := func(id string, listening bool) {
			e := event.New()
			e.SetID(id)
			if err := w.send(context.Background(), e, listening); err != nil {
				t.Fatal(err)
			}
		}
		call("first", true) // none was sent yet
		synctest.Wait()
		call("a", true)
		time.Sleep(4 * time.Second)
		call("b", true)
		call("unheard", false)
		time.Sleep(4 * time.Second) // 4 s after the last send
		synctest.Wait()
		call("c", true)
		time.Sleep(2 * time.Second)
		call("d", true)
		call("e", true)
		synctest.Wait() // a keep-alive is sent in the background
		want := []string{"send first", "send unheard", "send d"}
		if !slices.Equal(sink.log, want) {
			t.Fatalf("sent %v, want %v", sink.log, want)
		}
		// What the monitor's events_sent_total counts them as.
		if want := []string{"keep_alive", "unheard", "keep_alive"}; !slices.Equal(reasons, want) {
			t.Fatalf("counted as %v, want %v", reasons, want)
		}
	})
}

// A change whose row was listened for does not fail when its keep-alive event does: it needed no event.
func TestAFailedKeepAliveFailsNoListenedChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &gateSink{release: make(chan error, 1)}
		sink.release <- errors.New("the broker is down")
		var reasons []string
		w := &waker{sink: sink, keepAlive: 5 * time.Second, sent: func(r string) { reasons = append(reasons, r) }}
		e := event.New()
		e.SetID("x")
		if err := w.send(context.Background(), e, true); err != nil {
			t.Fatalf("a listened change failed with its keep-alive: %v", err)
		}
		synctest.Wait()
		if !slices.Equal(sink.log, []string{"send x"}) || len(reasons) != 0 {
			t.Fatalf("sent %v, counted %v; want one send, not counted as accepted", sink.log, reasons)
		}
	})
}
