package monitor

import (
	"context"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// EventSink sends job state changes as CloudEvents to K_SINK (the Broker in a cluster, status-report in
// make run), retrying with backoff until accepted or ctx ends.
type EventSink struct {
	client cloudevents.Client
}

// NewEventSink targets url.
func NewEventSink(url string) (*EventSink, error) {
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(url))
	if err != nil {
		return nil, fmt.Errorf("K_SINK %s: %w", url, err)
	}
	return &EventSink{client: c}, nil
}

// Send implements Sender. The event id is the job id and sequence number, so a resend is recognisably
// the same event.
func (s *EventSink) Send(ctx context.Context, jobID string, seq int64, u ucloud.JobUpdate) error {
	e := cloudevents.NewEvent()
	e.SetID(fmt.Sprintf("%s-%d", jobID, seq))
	e.SetSource(status.EventSource)
	e.SetType(status.EventType)
	e.SetSubject(jobID)
	e.SetTime(time.UnixMilli(u.Timestamp))
	e.SetExtension(status.ExtensionJobID, jobID)
	e.SetExtension(status.ExtensionSeq, int32(seq))
	if err := e.SetData(cloudevents.ApplicationJSON, u); err != nil {
		return err
	}
	ctx = cloudevents.ContextWithRetriesExponentialBackoff(ctx, 100*time.Millisecond, 8)
	if res := s.client.Send(ctx, e); !cloudevents.IsACK(res) {
		return fmt.Errorf("sink refused event %s: %w", e.ID(), res)
	}
	return nil
}
