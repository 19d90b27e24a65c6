package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/envtest"
)

// Core answers 503 for 60 s while job updates keep coming: status-report accepts them all, and afterwards
// every update arrives, in per-job order.
func TestCoreDownSixtySecondsLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a minute")
	}
	s := newStack(t)
	monitor := s.withEvents(t)
	sr := startFunction(t, "status-report", s.vars)
	s.core.FailFor("/api/jobs/control/update", http.StatusServiceUnavailable, 60*time.Second)
	order := []ucloud.JobState{ucloud.StateInQueue, ucloud.StateRunning, ucloud.StateSuccess}
	began := time.Now()
	for seq, st := range order {
		for job := range 50 {
			msg := "state " + string(st)
			raw, _ := json.Marshal(ucloud.JobUpdate{State: &st, Status: &msg, Timestamp: time.Now().UnixMilli()})
			req, _ := http.NewRequest(http.MethodPost, sr.URL+"/", bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+monitor.Token(t))
			for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": fmt.Sprintf("%d-%d", job, seq+1), "Ce-Source": status.EventSource,
				"Ce-Type": status.EventType, "Ce-Jobid": strconv.Itoa(job), "Ce-Seq": strconv.Itoa(seq + 1)} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("event refused during the outage: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		time.Sleep(15 * time.Second) // the events of each state arrive spread over the outage
	}
	if n := len(s.core.Updates()); n != 0 {
		t.Fatalf("Core accepted %d updates while answering 503", n)
	}
	envtest.Eventually(t, 120*time.Second, func() error {
		if n := len(s.core.Updates()); n != 150 {
			return fmt.Errorf("Core has %d of 150 updates", n)
		}
		return nil
	})
	figure(t, "Core down 60 s: all 150 updates delivered %s after the outage began", time.Since(began).Round(time.Second))
	byJob := map[string][]string{}
	for _, u := range s.core.Updates() {
		byJob[u.ID] = append(byJob[u.ID], string(*u.Update.State))
	}
	for job := range 50 {
		if got := fmt.Sprint(byJob[strconv.Itoa(job)]); got != "[IN_QUEUE RUNNING SUCCESS]" {
			t.Fatalf("job %d: Core got %s", job, got)
		}
	}
}
