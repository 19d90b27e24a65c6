package jobevents_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

func ptr[T any](v T) *T { return &v }

// overHTTP sends e through the SDK's HTTP binding (binary or structured mode) and reads it back as
// status-report's host does, so extensions arrive as they do on the wire (seq as a string).
func overHTTP(t *testing.T, e event.Event, structured bool) event.Event {
	t.Helper()
	ctx := binding.WithForceBinary(context.Background())
	if structured {
		ctx = binding.WithForceStructured(context.Background())
	}
	req, err := http.NewRequest(http.MethodPost, "http://status-report.invalid/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	got, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	return *got
}

// The monitor builds, status-report parses: what comes out is what went in, in either HTTP mode.
func TestBuildParseRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC).UnixMilli()
	cases := []struct {
		name  string
		jobID string
		seq   int64
		u     ucloud.JobUpdate
	}{
		{"first state", "77", 1, ucloud.JobUpdate{State: ptr(ucloud.StateInQueue), Status: ptr("The application is starting."), Timestamp: ts}},
		{"final state, later sequence", "4021", 9, ucloud.JobUpdate{State: ptr(ucloud.StateSuccess), Status: ptr("Your job has terminated."), Timestamp: ts + 1}},
		{"status only", "5", 2, ucloud.JobUpdate{Status: ptr("still here"), Timestamp: ts}},
	}
	for _, tc := range cases {
		for _, structured := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				e, err := jobevents.Build(tc.jobID, tc.seq, tc.u)
				if err != nil {
					t.Fatal(err)
				}
				if e.ID() != tc.jobID+"-"+strconv.FormatInt(tc.seq, 10) || e.Type() != jobevents.Type || e.Source() != jobevents.Source || e.Subject() != tc.jobID || !e.Time().Equal(time.UnixMilli(tc.u.Timestamp)) {
					t.Fatalf("built id %q type %q source %q subject %q time %v", e.ID(), e.Type(), e.Source(), e.Subject(), e.Time())
				}
				if err := e.Validate(); err != nil {
					t.Fatalf("built an invalid CloudEvent: %v", err)
				}
				jobID, seq, u, err := jobevents.Parse(overHTTP(t, e, structured))
				if err != nil {
					t.Fatalf("parse (structured %v): %v", structured, err)
				}
				if jobID != tc.jobID || seq != tc.seq || !reflect.DeepEqual(u, tc.u) {
					t.Fatalf("structured %v: got (%q, %d, %+v), want (%q, %d, %+v)", structured, jobID, seq, u, tc.jobID, tc.seq, tc.u)
				}
			})
		}
	}
}

// The monitor marks the events whose outbox row it committed; the mark arrives as sent, in either HTTP
// mode, and an event without it (a resend) is not taken for stored.
func TestStoredMarkRoundTrip(t *testing.T) {
	u := ucloud.JobUpdate{State: ptr(ucloud.StateRunning), Timestamp: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC).UnixMilli()}
	for _, marked := range []bool{false, true} {
		for _, structured := range []bool{false, true} {
			e, err := jobevents.Build("77", 3, u)
			if err != nil {
				t.Fatal(err)
			}
			if marked {
				jobevents.MarkStored(&e)
			}
			if got := jobevents.Stored(overHTTP(t, e, structured)); got != marked {
				t.Fatalf("marked %v, structured %v: received as stored %v", marked, structured, got)
			}
		}
	}
}

// What a job pod (or a broken sender) could put in an event that reaches status-report, and the answer:
// a 400 in UCloud's shape, nothing parsed. The job id is returned once known, for the log.
func TestParseRefuses(t *testing.T) {
	good := func() event.Event {
		e := event.New()
		e.SetID("77-1")
		e.SetSource(jobevents.Source)
		e.SetType(jobevents.Type)
		e.SetExtension(jobevents.ExtensionJobID, "77")
		e.SetExtension(jobevents.ExtensionSeq, "1")
		e.SetTime(time.UnixMilli(1000))
		if err := e.SetData(event.ApplicationJSON, []byte(`{"state":"RUNNING","timestamp":5}`)); err != nil {
			t.Fatal(err)
		}
		return e
	}
	type want struct {
		jobID  string
		status int
		code   string
		why    string
	}
	cases := []struct {
		name   string
		change func(e *event.Event)
		want   want
	}{
		{"another type", func(e *event.Event) { e.SetType("com.example.job.deleted") },
			want{"", 400, "UNKNOWN_EVENT_TYPE", `status-report does not handle events of type "com.example.job.deleted".`}},
		{"no job id", func(e *event.Event) { e.SetExtension(jobevents.ExtensionJobID, nil) },
			want{"", 400, "BAD_EVENT", `The event has no "jobid" extension.`}},
		{"empty job id", func(e *event.Event) { e.SetExtension(jobevents.ExtensionJobID, "") },
			want{"", 400, "BAD_EVENT", `The event has no "jobid" extension.`}},
		{"no seq", func(e *event.Event) { e.SetExtension(jobevents.ExtensionSeq, nil) },
			want{"77", 400, "BAD_EVENT", `The event's "seq" extension must be a positive integer.`}},
		{"seq 0", func(e *event.Event) { e.SetExtension(jobevents.ExtensionSeq, "0") },
			want{"77", 400, "BAD_EVENT", `The event's "seq" extension must be a positive integer.`}},
		{"negative seq", func(e *event.Event) { e.SetExtension(jobevents.ExtensionSeq, int32(-3)) },
			want{"77", 400, "BAD_EVENT", `The event's "seq" extension must be a positive integer.`}},
		{"seq not a number", func(e *event.Event) { e.SetExtension(jobevents.ExtensionSeq, "one") },
			want{"77", 400, "BAD_EVENT", `The event's "seq" extension must be a positive integer.`}},
		{"no data", func(e *event.Event) { e.DataEncoded = nil },
			want{"77", 400, "BAD_REQUEST", "The request body is empty; a JSON object was expected."}},
		{"malformed data", func(e *event.Event) { e.DataEncoded = []byte(`{"state":`) },
			want{"77", 400, "BAD_REQUEST", "Invalid request: malformed JSON (the body ends too early)."}},
		{"unknown state", func(e *event.Event) { e.DataEncoded = []byte(`{"state":"DELETED","timestamp":5}`) },
			want{"77", 400, "BAD_EVENT", `Unknown job state "DELETED".`}},
		{"no timestamp and no time", func(e *event.Event) {
			e.DataEncoded = []byte(`{"state":"RUNNING"}`)
			e.SetTime(time.Time{})
		}, want{"77", 400, "BAD_EVENT", "The update has no timestamp and the event no time."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := good()
			tc.change(&e)
			jobID, seq, u, err := jobevents.Parse(e)
			var fe *fn.Error
			if !errors.As(err, &fe) {
				t.Fatalf("accepted (or not a UCloud error): %v, got (%q, %d, %+v)", err, jobID, seq, u)
			}
			got := want{jobID, fe.Status, fe.Code, fe.Why}
			if got != tc.want || seq != 0 || !reflect.DeepEqual(u, ucloud.JobUpdate{}) {
				t.Fatalf("got %+v (seq %d, update %+v), want %+v and nothing parsed", got, seq, u, tc.want)
			}
		})
	}
	// The same event unchanged is accepted, so each refusal above is due to its one change; an update
	// without a timestamp takes the event's time.
	e := good()
	e.DataEncoded = []byte(`{"state":"RUNNING"}`)
	jobID, seq, u, err := jobevents.Parse(e)
	if want := (ucloud.JobUpdate{State: ptr(ucloud.StateRunning), Timestamp: 1000}); err != nil || jobID != "77" || seq != 1 || !reflect.DeepEqual(u, want) {
		t.Fatalf("got (%q, %d, %+v, %v), want (77, 1, %+v, nil)", jobID, seq, u, err, want)
	}
}
