package monitor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ucloud-im/knative-im/shared/eventauth"
)

// EventSink sends job state changes as CloudEvents to K_SINK (the Broker in a cluster, status-report in
// make run), each with the monitor's token as `Authorization: Bearer`, retrying with backoff until
// accepted or ctx ends.
type EventSink struct {
	client cloudevents.Client
}

// NewEventSink targets url, authenticating every request (retries too) with a token from tokens.
func NewEventSink(url string, tokens eventauth.TokenSource) (*EventSink, error) {
	if tokens == nil {
		return nil, errors.New("K_SINK: no event token source")
	}
	// Keep a connection per worker: the default transport keeps 2 idle per host, so with DefaultWorkers
	// sending at once nearly every event dialled a new connection (9% of the monitor's CPU at 3,000 pods,
	// and an accept and a new conn goroutine in status-report each time).
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = DefaultWorkers, DefaultWorkers
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(url), cehttp.WithRoundTripper(&bearer{tokens: tokens, next: t}))
	if err != nil {
		return nil, fmt.Errorf("K_SINK %s: %w", url, err)
	}
	return &EventSink{client: c}, nil
}

// bearer adds the current token to each request, so a rotated token is used from the next attempt on.
type bearer struct {
	tokens eventauth.TokenSource
	next   http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	token, err := b.tokens.Token(r.Context())
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return b.next.RoundTrip(r)
}

// Send implements Sender: it posts e, retrying with backoff until it is accepted or ctx ends.
func (s *EventSink) Send(ctx context.Context, e event.Event) error {
	ctx = cloudevents.ContextWithRetriesExponentialBackoff(ctx, 100*time.Millisecond, 8)
	if res := s.client.Send(ctx, e); !cloudevents.IsACK(res) {
		return fmt.Errorf("sink refused event %s: %w", e.ID(), res)
	}
	return nil
}
