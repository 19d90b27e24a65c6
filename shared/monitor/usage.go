package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
)

// UsageCore is where usage goes (the Core client's ReportUsage).
type UsageCore interface {
	ReportUsage(ctx context.Context, items []ucloud.ReportUsageRequest) ([]bool, error)
}

// Usage reports the running jobs' consumption to Core's accounting, as the original IM does: per job, an
// absolute total (isDeltaCharge false, scope job-<id>) of replicas x price x running time / frequency, once
// per reporting period, and the final total once after the job ended. Running time is kept in job_usage
// (from the monitor's RUNNING and later reports), and the period a job was last reported in too, so a
// restarted monitor neither reports a job twice in one period nor starts its time again from zero.
type Usage struct {
	Core UsageCore
	// Every is the reporting period (default 30 s, as the original).
	Every time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// batchSize is the most reports in one call, as the original sends them.
const batchSize = 500

func (u *Usage) every() time.Duration {
	if u.Every <= 0 {
		return 30 * time.Second
	}
	return u.Every
}

// Slot is the reporting period t falls in.
func (u *Usage) Slot(t time.Time) int64 { return t.UnixNano() / int64(u.every()) }

// Report sends the total of every job not yet reported in the current period, and records what Core
// accepted. Core applies a batch's items in order and stops at the first it refuses (4xx), so a refused
// batch is sent again one item at a time: the refused job is logged, tried again next period, and from
// then on sent alone, so it cannot stop the others' batch again; the jobs before it in that batch were sent
// twice, which changes nothing at Core, as each report is a total. Core unreachable: nothing is recorded
// and the next look sends it; a report Core applied but the monitor could not record is sent again, with
// the same effect: none.
func (u *Usage) Report(ctx context.Context, jobs *store.JobUsage) (int, error) {
	now := u.Now()
	slot := u.Slot(now)
	due, err := jobs.Due(ctx, slot)
	if err != nil {
		return 0, err
	}
	var batch, alone []store.JobUsageRow
	for _, r := range due {
		if _, err := usage.Period(r.Charge.Frequency); err != nil {
			u.Log.Warn("a job's charge has no valid frequency: its usage is not reported", "job_id", r.JobID, "err", err.Error())
			continue
		}
		if r.Refused {
			alone = append(alone, r)
		} else {
			batch = append(batch, r)
		}
	}
	var chunks [][]store.JobUsageRow
	for start := 0; start < len(batch); start += batchSize {
		chunks = append(chunks, batch[start:min(start+batchSize, len(batch))])
	}
	for _, r := range alone {
		chunks = append(chunks, []store.JobUsageRow{r})
	}
	sent := 0
	for _, chunk := range chunks {
		items := make([]ucloud.ReportUsageRequest, len(chunk))
		done := make([]store.UsageReported, len(chunk))
		for i, r := range chunk {
			total, _ := r.Charge.Total(r.Ran(now)) // the frequency was checked above
			// Never below what Core holds: a clock that stepped back must not hand usage back.
			total = max(total, r.Reported)
			scope := usage.Scope(r.JobID)
			items[i] = ucloud.ReportUsageRequest{Owner: r.Charge.Owner, CategoryIDV2: r.Charge.Category, Usage: total,
				Description: ucloud.ChargeDescription{Scope: &scope}}
			done[i] = store.UsageReported{JobID: r.JobID, Total: total, Final: r.Ended}
		}
		refusedAt := func(i int, err error) {
			u.Log.Warn("Core refused a job's usage report; trying again next period", "job_id", chunk[i].JobID,
				"owner", chunk[i].Charge.Owner.Reference(), "category", chunk[i].Charge.Category.Name, "usage", items[i].Usage, "err", err.Error())
			done[i] = store.UsageReported{JobID: chunk[i].JobID, Total: chunk[i].Reported, Refused: true}
		}
		_, err := u.Core.ReportUsage(ctx, items)
		switch {
		case refusedByCore(err) && len(items) > 1:
			for i := range items {
				if _, err := u.Core.ReportUsage(ctx, items[i:i+1]); refusedByCore(err) {
					refusedAt(i, err)
				} else if err != nil {
					return sent, fmt.Errorf("report usage: %w", err)
				}
			}
		case refusedByCore(err):
			refusedAt(0, err)
		case err != nil:
			return sent, fmt.Errorf("report usage: %w", err)
		}
		if err := jobs.RecordReported(ctx, slot, done); err != nil {
			return sent, fmt.Errorf("record the usage reported: %w", err)
		}
		sent += len(chunk)
	}
	return sent, nil
}

// refusedByCore is a 4xx: Core will not take the report as it is.
func refusedByCore(err error) bool {
	var se *ucloud.StatusError
	return errors.As(err, &se) && se.Status >= 400 && se.Status < 500
}

// reportUsage runs Report while leading, looking four times per period, so each period has a report even
// when a tick comes late.
func (m *Monitor) reportUsage(ctx context.Context) {
	u := m.Usage
	if u.Now == nil {
		u.Now = time.Now
	}
	if u.Log == nil {
		u.Log = m.Log
	}
	ticker := time.NewTicker(max(u.every()/4, 50*time.Millisecond))
	defer ticker.Stop()
	for {
		if n, err := u.Report(ctx, m.usage()); err != nil && ctx.Err() == nil {
			m.Log.Warn("reporting usage to Core failed; trying again", "err", err.Error())
		} else if n > 0 {
			m.Log.Debug("usage reported", "jobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// usage is the job_usage table, through the monitor's own pool.
func (m *Monitor) usage() *store.JobUsage { return &store.JobUsage{Pool: m.Pool} }

// account queues the record of a change of a job's running: from RUNNING on, its running time counts (with
// the charge job-create wrote on its pods, kept in the row as the pods may be gone by the end); leaving
// RUNNING adds the spell up, and a final state ends it. Only a job that was, or was about to be reported,
// RUNNING has time to add, and a final state is once per job, so other changes queue nothing. It is
// committed with the change's intent (report), in one transaction.
func (m *Monitor) account(b *pgx.Batch, jobID string, prev store.JobStateRow, state ucloud.JobState, pods []*corev1.Pod, at time.Time) {
	if state == ucloud.StateRunning {
		for _, p := range pods {
			c, ok, err := usage.FromAnnotations(p.Annotations)
			if err != nil {
				m.Log.Warn("a job pod's charge is malformed: its usage is not reported", "job_id", jobID, "pod", p.Name, "err", err.Error())
				return
			}
			if ok {
				m.usage().QueueStarted(b, jobID, c, at)
				return
			}
		}
		return // not charged (integrated applications are free)
	}
	if prev.State == ucloud.StateRunning || prev.SentState == ucloud.StateRunning || state.Final() {
		m.usage().QueueStopped(b, jobID, at, state.Final())
	}
}
