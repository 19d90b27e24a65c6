package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
	"github.com/ucloud-im/knative-im/test/otlptest"
)

const (
	coreTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	coreSpanID  = "00f067aa0ba902b7"
	coreTrace   = "00-" + coreTraceID + "-" + coreSpanID + "-01"
)

// traceStack is job-create, the monitor and status-report as processes with the given extra environment
// for each, status-report's Core calls going through a header log.
type traceStack struct {
	*stack
	create *fnProc
	sent   *fakecore.HeaderLog
}

func startTraceStack(t *testing.T, create, monitor, report map[string]string) *traceStack {
	t.Helper()
	s := newStack(t)
	s.withEvents(t)
	key := filepath.Join(t.TempDir(), "gateway.key")
	if err := os.WriteFile(key, []byte("a gateway key for the trace test, long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	with := func(base map[string]string, extra map[string]string) map[string]string {
		for k, v := range extra {
			base = withVar(base, k, v)
		}
		return base
	}
	sent := s.core.RecordHeaders(t)
	sr := startFunction(t, "status-report", with(withVar(s.vars, "UCLOUD_CORE_URL", sent.URL), report))
	vars := with(s.vars, map[string]string{"K_SINK": sr.URL, "MONITOR_RESYNC": "1s", "UCLOUD_GATEWAY_KEY_FILE": key, "UCLOUD_APPS_DOMAIN": "apps.example.org", "LOG_LEVEL": "info"})
	ts := &traceStack{stack: s, sent: sent, create: startFunction(t, "job-create", with(vars, create))}
	startFunction(t, "monitor", with(withVar(vars, "POD_NAME", "monitor-trace"), monitor))
	return ts
}

// submit sends job id's create as Core does, with the given traceparent header (none when empty), and
// makes the job known to Core as a create it saw succeed.
func (ts *traceStack) submit(t *testing.T, id, traceparent string) {
	t.Helper()
	j := ucloud.Job{ID: id, CreatedAt: time.Now().UnixMilli(), Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"},
		Specification: ucloud.JobSpecification{Product: ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"},
			Replicas: 1, Resources: []ucloud.AppParameterValue{}},
		Status: ucloud.JobStatus{State: ucloud.StateInQueue}, Updates: []ucloud.JobUpdate{}}
	apps.Load("batch").Apply(&j)
	raw, _ := json.Marshal(ucloud.BulkRequest[ucloud.Job]{Items: []ucloud.Job{j}})
	req, _ := http.NewRequest(http.MethodPost, ts.create.URL+"/ucloud/k8s/jobs", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+ts.core.Token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ucloud-username", base64.StdEncoding.EncodeToString([]byte("alice#1")))
	if traceparent != "" {
		req.Header.Set("Traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("create %s: %d", id, resp.StatusCode)
	}
	ts.core.PutJob(j)
}

func (ts *traceStack) running(t *testing.T, id string) {
	t.Helper()
	envtest.Eventually(t, 60*time.Second, func() error {
		if got := ts.core.Transitions(id); len(got) == 0 || got[len(got)-1] != ucloud.StateRunning {
			return fmt.Errorf("job %s at Core: %v", id, got)
		}
		return nil
	})
}

// podTrace is the traceparent annotation on the job's pod.
func podTrace(t *testing.T, ns, id string) string {
	t.Helper()
	pods, err := env.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of job %s: %v %v", id, pods, err)
	}
	return pods.Items[0].Annotations[tracing.AnnotationTraceParent]
}

// updateTraces are the traceparents of status-report's update calls to Core, in order.
func (ts *traceStack) updateTraces() []string {
	var out []string
	for _, h := range ts.sent.Sent("/api/jobs/control/update") {
		out = append(out, h.Get("Traceparent"))
	}
	return out
}

// find is the one span of service named name in trace, or an error naming what there is.
func find(spans []otlptest.Span, service, name, trace string) ([]otlptest.Span, error) {
	var out []otlptest.Span
	for _, s := range spans {
		if s.Service == service && s.Name == name && s.TraceID == trace {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no span %s/%q in trace %s among %d spans", service, name, trace, len(spans))
	}
	return out, nil
}

// One trace from Core's create call to the update Core receives: job-create's request span continues
// Core's traceparent and goes onto the job's pod as an annotation; the monitor's send span (a child of
// it, read back from the pod in the informer's slimmed cache) goes onto the job state event as its
// CloudEvents distributed-tracing extension; status-report processes the event in that trace, stores it
// with the outbox row, and its update call to Core is a client span in it, whose traceparent Core gets.
// Every process exports to an OTLP/HTTP receiver in the test. A create whose traceparent is forged is
// served all the same, in a trace of its own.
func TestOneTraceFromCoresCreateToTheUpdate(t *testing.T) {
	recv := otlptest.Start(t)
	otel := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OTEL_BSP_SCHEDULE_DELAY": "50"}
	ts := startTraceStack(t, otel, otel, otel)
	ns := ts.vars["JOBS_NAMESPACE"]
	const job = "940001"
	ts.submit(t, job, coreTrace)
	ts.running(t, job)

	if got := podTrace(t, ns, job); !strings.HasPrefix(got, "00-"+coreTraceID+"-") {
		t.Fatalf("the pod's %s is %q, want one in Core's trace", tracing.AnnotationTraceParent, got)
	}
	eventName := jobevents.Type
	var createSpan, updateSpan otlptest.Span
	envtest.Eventually(t, 20*time.Second, func() error {
		spans := recv.Spans()
		creates, err := find(spans, "job-create", "POST /ucloud/{provider}/jobs", coreTraceID)
		if err != nil {
			return err
		}
		sends, err := find(spans, "monitor", "send "+eventName, coreTraceID)
		if err != nil {
			return err
		}
		events, err := find(spans, "status-report", "event "+eventName, coreTraceID)
		if err != nil {
			return err
		}
		deliveries, err := find(spans, "status-report", "deliver job updates", coreTraceID)
		if err != nil {
			return err
		}
		updates, err := find(spans, "status-report", "jobs.control.update", coreTraceID)
		if err != nil {
			return err
		}
		// The chain, parent by parent: Core -> job-create -> monitor -> delivery -> the call to Core, and
		// monitor -> status-report's event. The delivery continues the trace of the outbox row: the monitor's
		// (it writes the row with its intent), or status-report's event for a row only the event brought.
		createSpan = creates[0]
		if len(creates) != 1 || createSpan.ParentSpanID != coreSpanID || createSpan.Kind != tracepb.Span_SPAN_KIND_SERVER {
			return fmt.Errorf("job-create's spans %+v, want one child of Core's span", creates)
		}
		sendIDs := map[string]bool{}
		for _, s := range sends {
			if s.ParentSpanID != createSpan.SpanID || s.Kind != tracepb.Span_SPAN_KIND_PRODUCER {
				return fmt.Errorf("monitor span %+v is not a child of job-create's %s", s, createSpan.SpanID)
			}
			sendIDs[s.SpanID] = true
		}
		eventIDs := map[string]bool{}
		for _, e := range events {
			if !sendIDs[e.ParentSpanID] || e.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
				return fmt.Errorf("status-report's event span %+v is not a child of a monitor send %v", e, sendIDs)
			}
			eventIDs[e.SpanID] = true
		}
		deliveryIDs := map[string]bool{}
		for _, d := range deliveries {
			if !eventIDs[d.ParentSpanID] && !sendIDs[d.ParentSpanID] {
				return fmt.Errorf("delivery span %+v is not a child of a monitor send %v nor of an event span %v", d, sendIDs, eventIDs)
			}
			deliveryIDs[d.SpanID] = true
		}
		for _, u := range updates {
			if !deliveryIDs[u.ParentSpanID] || u.Kind != tracepb.Span_SPAN_KIND_CLIENT {
				return fmt.Errorf("update span %+v is not a child of a delivery %v", u, deliveryIDs)
			}
		}
		updateSpan = updates[len(updates)-1]
		return nil
	})
	calls := ts.updateTraces()
	if len(calls) == 0 {
		t.Fatal("Core got no update")
	}
	for _, tp := range calls {
		if !strings.HasPrefix(tp, "00-"+coreTraceID+"-") {
			t.Fatalf("Core's update calls carried %v, want every one in Core's trace", calls)
		}
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		for _, s := range recv.Spans() {
			if s.Service == "status-report" && s.Name == "jobs.control.update" && calls[len(calls)-1] == "00-"+coreTraceID+"-"+s.SpanID+"-01" {
				return nil
			}
		}
		return fmt.Errorf("the last update's traceparent %s is no exported update span (last seen %s)", calls[len(calls)-1], updateSpan.SpanID)
	})
	// job-create's log line of the request carries Core's trace id.
	if !strings.Contains(ts.create.logs.String(), `"trace_id":"`+coreTraceID+`"`) {
		t.Fatalf("job-create's logs have no line with Core's trace id:\n%s", ts.create.logs.String())
	}

	// A forged traceparent: the create is served and the job runs, in a trace job-create started.
	const forged = "940002"
	before := len(calls)
	ts.submit(t, forged, "00-"+coreTraceID+"-zzzzzzzzzzzzzzzz-01")
	ts.running(t, forged)
	got := podTrace(t, ns, forged)
	if trace := strings.Split(got, "-"); len(trace) != 4 || trace[1] == coreTraceID || strings.Contains(got, "zzzz") {
		t.Fatalf("the pod of the job created with a forged traceparent carries %q", got)
	}
	newTrace := strings.Split(got, "-")[1]
	later := ts.updateTraces()[before:]
	if len(later) == 0 || !strings.HasPrefix(later[len(later)-1], "00-"+newTrace+"-") {
		t.Fatalf("the forged job's update calls carried %v, want job-create's new trace %s", later, newTrace)
	}
}

// Tracing off, three ways (OTEL_TRACES_EXPORTER=none, OTEL_SDK_DISABLED=true with an endpoint, and no
// endpoint at all): nothing reaches the receiver and the job runs; Core's traceparent still passes through
// unchanged to the pod, the event and the update Core receives.
func TestTracingOffExportsNothingAndBreaksNothing(t *testing.T) {
	recv := otlptest.Start(t)
	// Checked once the processes have stopped (cleanups run last-registered first): a provider that
	// exported would have flushed everything by then.
	t.Cleanup(func() {
		if got := recv.Spans(); len(got) != 0 {
			t.Errorf("tracing off, yet %d spans were exported: %+v", len(got), got)
		}
	})
	ts := startTraceStack(t,
		map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OTEL_TRACES_EXPORTER": "none", "OTEL_BSP_SCHEDULE_DELAY": "50"},
		map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": recv.URL + "/v1/traces", "OTEL_SDK_DISABLED": "true", "OTEL_BSP_SCHEDULE_DELAY": "50"},
		nil)
	const job = "940101"
	ts.submit(t, job, coreTrace)
	ts.running(t, job)
	if got := podTrace(t, ts.vars["JOBS_NAMESPACE"], job); got != coreTrace {
		t.Fatalf("the pod carries %q, want Core's traceparent unchanged", got)
	}
	calls := ts.updateTraces()
	if len(calls) == 0 {
		t.Fatal("Core got no update")
	}
	for _, tp := range calls {
		if tp != coreTrace {
			t.Fatalf("Core's update calls carried %v, want Core's own traceparent", calls)
		}
	}
}
