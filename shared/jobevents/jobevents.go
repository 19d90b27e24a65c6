// Package jobevents owns the job state event, the one contract between the monitor (sender) and
// status-report (receiver): its type, source, extension attributes, and how it is built and read back.
package jobevents

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The job state event: type, the monitor's source, and the extension attributes carrying the job id and
// the per-job sequence number. The data is the JobUpdate (with the real time of the change).
const (
	Type           = "com.github.ucloud-im.job.state.changed"
	Source         = "/ucloud-im/monitor"
	ExtensionJobID = "jobid"
	ExtensionSeq   = "seq"
	// ExtensionStored, true, says the sender committed the event's outbox row (status.OutboxRow, with the
	// event's id) in the transaction of its intent: the receiver only has to deliver it.
	ExtensionStored = "stored"
)

// Build makes the event for update u, the seq-th change of job jobID. Its id is the job id and sequence
// number, so a resend is recognisably the same event.
func Build(jobID string, seq int64, u ucloud.JobUpdate) (event.Event, error) {
	e := event.New()
	e.SetID(fmt.Sprintf("%s-%d", jobID, seq))
	e.SetSource(Source)
	e.SetType(Type)
	e.SetSubject(jobID)
	e.SetTime(time.UnixMilli(u.Timestamp))
	e.SetExtension(ExtensionJobID, jobID)
	e.SetExtension(ExtensionSeq, int32(seq))
	if err := e.SetData(event.ApplicationJSON, u); err != nil {
		return event.Event{}, fmt.Errorf("job %s update %d: %w", jobID, seq, err)
	}
	return e, nil
}

// MarkStored marks e as one whose outbox row its sender committed (ExtensionStored).
func MarkStored(e *event.Event) { e.SetExtension(ExtensionStored, true) }

// Stored reports whether e is marked by MarkStored (a bool when built here, a string over HTTP).
func Stored(e event.Event) bool {
	switch v := e.Extensions()[ExtensionStored].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// Parse reads a received event back into the job id, sequence number and update, refusing (as a 400 in
// UCloud's shape) an event of another type, one without a job id or a positive sequence number, and an
// update with an unknown state or no time. An update without a timestamp takes the event's time. jobID is
// returned as soon as it is known, even with an error, so the caller can log it.
func Parse(e event.Event) (jobID string, seq int64, u ucloud.JobUpdate, err error) {
	if e.Type() != Type {
		return "", 0, u, fn.Errorf(http.StatusBadRequest, "UNKNOWN_EVENT_TYPE", "status-report does not handle events of type %q.", e.Type())
	}
	jobID, _ = e.Extensions()[ExtensionJobID].(string)
	if jobID == "" {
		return "", 0, u, fn.Errorf(http.StatusBadRequest, "BAD_EVENT", "The event has no %q extension.", ExtensionJobID)
	}
	seq, err = seqOf(e.Extensions()[ExtensionSeq])
	if err != nil {
		return jobID, 0, u, fn.Wrap(err, http.StatusBadRequest, "BAD_EVENT", fmt.Sprintf("The event's %q extension must be a positive integer.", ExtensionSeq))
	}
	if err := fn.DecodeJSONBytes(e.Data(), &u); err != nil {
		return jobID, 0, ucloud.JobUpdate{}, err
	}
	if u.State != nil && !u.State.Valid() {
		return jobID, 0, ucloud.JobUpdate{}, fn.Errorf(http.StatusBadRequest, "BAD_EVENT", "Unknown job state %q.", *u.State)
	}
	if u.Timestamp <= 0 {
		u.Timestamp = e.Time().UnixMilli() // the time of the change, never 0 (a bug of the original)
	}
	if u.Timestamp <= 0 {
		return jobID, 0, ucloud.JobUpdate{}, fn.Errorf(http.StatusBadRequest, "BAD_EVENT", "The update has no timestamp and the event no time.")
	}
	return jobID, seq, u, nil
}

// seqOf reads the sequence number: an int32 when built here, a string when it came over HTTP.
func seqOf(v any) (int64, error) {
	var n int64
	var err error
	switch s := v.(type) {
	case string:
		n, err = strconv.ParseInt(s, 10, 64)
	case int32:
		n = int64(s)
	case int64:
		n = s
	default:
		err = fmt.Errorf("seq %v (%T)", v, v)
	}
	if err == nil && n < 1 {
		err = fmt.Errorf("seq %d", n)
	}
	return n, err
}
