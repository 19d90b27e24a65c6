package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobevents"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/shared/status"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/tracing"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Sender delivers one job state change's event (jobevents.Build, to K_SINK); it returns only once the
// event was accepted.
type Sender interface {
	Send(ctx context.Context, e event.Event) error
}

// Monitor watches the job pods of one namespace.
type Monitor struct {
	Kube      kubernetes.Interface
	Namespace string
	// Pods is where the job pods are listed and watched from; nil: PodSource(Kube, Namespace).
	Pods     cache.ListerWatcher
	Pool     *pgxpool.Pool
	Registry *iapps.Registry
	// Drives decides, every time an integrated application's pod is reconciled, which of its folders the
	// owner may still use; while leading, the monitor reads every tracked drive again from Core every
	// DriveRefresh (default 30 s). Without it no folder is mounted (fail closed).
	Drives       *drives.Access
	DriveRefresh time.Duration
	Sink         Sender
	Log          *slog.Logger
	// Resync re-examines every unfinished job and integrated application this often (expiry is a matter
	// of time, not of events); default 10 s.
	Resync  time.Duration
	Workers int
	Now     func() time.Time
	// Retention, when set, removes final job_state rows older than it whose job has no pods and no
	// integrated-application configuration, every RetentionEvery (default 1 h), while leading.
	Retention      time.Duration
	RetentionEvery time.Duration
	// Orphans, when set, removes every OrphanEvery (default 1 min), while leading, the jobs Core does not know.
	Orphans     *Orphans
	OrphanEvery time.Duration
	// Usage, when set, reports the running jobs' usage to Core's accounting while leading.
	Usage *Usage
	// Metrics records reconciles and the state changes sent; Queue is the work queue's metrics provider
	// (client-go's; nil: its default, which records nothing).
	Metrics *metrics.Monitor
	Queue   workqueue.MetricsProvider
	// EventKeepAlive: while status-report listens for the outbox rows the monitor commits (their events are
	// then not needed), one change's event is still sent this often (default 5 s), so Knative, which scales
	// status-report on its events, keeps it up while changes come, and so an instance's drainer is woken
	// that often even should the listener's connection be cut off without PostgreSQL noticing.
	EventKeepAlive time.Duration

	pods cache.Indexer
	// last is the leader's memory of job_state, rebuilt when Run starts; accepted writes the accepted
	// changes in batches while Run runs.
	last     *lastStates
	accepted *acceptedWriter
	writes   *groupWriter
	wakes    *waker
}

// DefaultWorkers is how many jobs are reconciled at once. A worker mostly waits: on the group commit of
// its change's intent, then on the send. When one durable commit stalls (a busy disk), every worker in that
// group waits with it; with 32 the changes arriving meanwhile queued behind them (queue wait was most of
// the p99 at 100 changes/s), while a worker costs only a goroutine: the database connections are shared
// (poolConns): the group commits take at most maxCommits of them.
const DefaultWorkers = 128

// poolConns is the monitor's database pool: the group commit, the reads of the jobs whose memory is in
// doubt, the integrated applications' lookups and the periodic passes.
const poolConns = 40

// Run watches until ctx ends: the pod informer and the work queue (controller) feed Workers workers, each
// deciding one job at a time (reconcile), while the leader's periodic passes run beside them.
func (m *Monitor) Run(ctx context.Context) error {
	if m.Resync == 0 {
		m.Resync = 10 * time.Second
	}
	if m.Workers == 0 {
		m.Workers = DefaultWorkers
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	source := m.Pods
	if source == nil {
		var err error
		if source, err = PodSource(m.Kube, m.Namespace); err != nil {
			return err
		}
	}
	informer := podInformer(source)
	queue := newJobQueue(m.Queue)
	defer queue.ShutDown()
	c, err := newController(informer, queue, m.reconcile, m.Metrics, m.Log)
	if err != nil {
		return err
	}
	m.pods = c.pods()
	// The informer stops with Run, however Run returns.
	informed := make(chan struct{})
	informing, stopInformer := context.WithCancel(ctx)
	go func() { defer close(informed); informer.RunWithContext(informing) }()
	defer func() { stopInformer(); <-informed }()
	if err := c.waitForCache(ctx); err != nil {
		return err
	}
	// The memory of what was reported, from the table, before anything is reconciled.
	m.last = newLastStates(m.states())
	for {
		err := m.last.load(ctx)
		if err == nil {
			break
		}
		m.Log.Warn("reading job_state failed; retrying", "err", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	// The informer's first list arrived as tens of MB of encoded pods at 10,000 pods, garbage now that the
	// cache holds what it kept of them: give that memory back to the system at once rather than over the
	// minutes the runtime's scavenger takes.
	debug.FreeOSMemory()
	m.writes = &groupWriter{pool: m.Pool}
	if m.EventKeepAlive == 0 {
		m.EventKeepAlive = 5 * time.Second
	}
	m.wakes = &waker{sink: m.Sink, keepAlive: m.EventKeepAlive, sent: m.Metrics.EventSent}
	m.accepted = newAcceptedWriter(m.states(), m.Log, func(jobID string) {
		m.last.doubt(jobID)
		queue.Add(jobID)
	})
	acceptedDone := make(chan struct{})
	go func() { defer close(acceptedDone); m.accepted.run(ctx) }()
	defer func() { <-acceptedDone }()
	if m.Retention > 0 {
		go store.Retention{Table: "job_state", Keep: m.Retention, Every: m.RetentionEvery, Sweep: m.Sweep, Log: m.Log}.Run(ctx)
		go store.Retention{Table: "job_usage", Keep: m.Retention, Every: m.RetentionEvery, Sweep: m.usage().DeleteReportedBefore, Log: m.Log}.Run(ctx)
		go store.Retention{Table: "terminal_lease", Keep: m.Retention, Every: m.RetentionEvery, Sweep: iapps.Leases{Pool: m.Pool}.DeleteEndedBefore, Log: m.Log}.Run(ctx)
	}
	if m.Orphans != nil {
		go m.sweepOrphans(ctx)
	}
	if m.Usage != nil {
		go m.reportUsage(ctx)
	}
	if m.Drives != nil {
		if m.DriveRefresh == 0 {
			m.DriveRefresh = 30 * time.Second
		}
		go m.Drives.Run(ctx, m.DriveRefresh, m.Log)
		go m.Drives.FollowProjects(ctx, m.Log)
	}
	go m.resyncPass(ctx, queue)
	for range m.Workers {
		go c.runWorker(ctx)
	}
	<-ctx.Done()
	return nil
}

// lostFolders are the folders a normal job's pods mount that their owner may no longer use (decided on
// the stored facts; none without Drives: the job keeps what Core checked at submit).
func (m *Monitor) lostFolders(ctx context.Context, pods []*corev1.Pod) ([]string, error) {
	if m.Drives == nil || len(pods) == 0 {
		return nil, nil
	}
	owner, folders, ok := drives.MountsOf(pods[0])
	if !ok {
		return nil, nil
	}
	denied, err := m.Drives.Denied(ctx, owner, folders, false)
	if err != nil {
		return nil, err
	}
	lost := make([]string, len(denied))
	for i, f := range denied {
		lost[i] = f.UCloudPath
	}
	return lost, nil
}

// writer commits the monitor's writes in groups; outside Run (tests calling Reconcile) one per call.
func (m *Monitor) writer() *groupWriter {
	if m.writes == nil {
		return &groupWriter{pool: m.Pool}
	}
	return m.writes
}

// states is the job_state table, through the monitor's own pool (role FnMonitor).
func (m *Monitor) states() *store.JobStates { return &store.JobStates{Pool: m.Pool} }

// memory is the leader's memory of job_state; outside Run (tests calling Reconcile) one that reads the
// table every time.
func (m *Monitor) memory() *lastStates {
	if m.last == nil {
		return newLastStates(m.states())
	}
	return m.last
}

// Reconcile examines one job and reports a change of its state.
func (m *Monitor) Reconcile(ctx context.Context, jobID string) error {
	return m.reconcile(ctx, jobID, newStages())
}

func (m *Monitor) reconcile(ctx context.Context, jobID string, st *stages) error {
	prev, err := m.memory().get(ctx, jobID)
	if err != nil {
		return err
	}
	st.mark("last")
	if prev.State.Final() {
		return nil // a final state is reported once and never followed by another
	}
	objs, err := m.pods.ByIndex(byJob, jobID)
	if err != nil {
		return err
	}
	pods := asPods(objs)
	ctx = jobevents.WithPodTrace(ctx, pods) // the event joins the trace of the create that made the pods
	var rec iapps.Record
	var isIApp bool
	if mayBeIApp(pods) {
		if rec, isIApp, err = m.iapp(ctx, jobID); err != nil {
			return err
		}
	}
	st.mark("iapp")
	var obs Observation
	if isIApp {
		var seen bool
		if obs, seen, err = m.iappState(ctx, rec, pods); err != nil || !seen {
			return err
		}
	} else {
		var ok bool
		obs, ok = Fold(pods, m.Now())
		switch {
		case !ok && prev.State == "" && prev.SentSeq == 0:
			return nil // no pods and never reported: not ours, or not started
		case !ok:
			// Terminate of a job without pods tells Core SUCCESS itself (jobs.Service.Terminate); this one
			// must then not add a second final update at Core.
			obs = Observation{State: ucloud.StateSuccess, Status: "Your job has terminated.", UnlessAlready: true}
		case obs.Expired:
			if err := m.deletePods(ctx, jobID); err != nil {
				return err
			}
		case !obs.State.Final():
			if lost, err := m.lostFolders(ctx, pods); err != nil {
				return err
			} else if len(lost) > 0 {
				// As the original: a running job whose owner may no longer use a folder is stopped.
				if err := m.deletePods(ctx, jobID); err != nil {
					return err
				}
				obs = Observation{State: ucloud.StateFailure, Status: "The job was stopped: you no longer have permission to use " + strings.Join(lost, ", ") + "."}
			}
		}
	}
	if obs.State == prev.State {
		return nil
	}
	st.mark("fold")
	var writes pgx.Batch
	m.account(&writes, jobID, prev, obs.State, pods, m.Now())
	st.mark("account")
	return m.report(ctx, jobID, prev, obs, &writes, st)
}

func (m *Monitor) deletePods(ctx context.Context, jobID string) error {
	return deleteJobPods(ctx, m.Kube, m.Namespace, jobID)
}

// deleteJobPods deletes every pod of a job (what the pods own goes with them); none left is success.
func deleteJobPods(ctx context.Context, cs kubernetes.Interface, namespace, jobID string) error {
	err := cs.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)},
		metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + jobID})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// asPods are the pods of the informer cache's objects, as the rules read them.
func asPods(objs []any) []*corev1.Pod {
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if c, ok := o.(*cachedPod); ok {
			pods = append(pods, c.pod())
		}
	}
	return pods
}

// report sends the change and records it. Before sending it records the intent (state and sequence number),
// so a monitor that crashed in between can tell, on its next look, a resend of that change (the same number:
// status-report drops it if it had arrived) from a later change (a new number; reusing the old one would have
// status-report drop the later change as a duplicate).
// The intent is committed with the change's usage record (writes) and the change's row in status-report's
// outbox, in one transaction shared with the other changes being committed at the same time (groupWriter),
// without waiting for a disk flush. While a status-report instance listens, the commit's notification wakes
// its drainer, which delivers the row at once, and no event is needed (but one every EventKeepAlive);
// otherwise the event, marked stored, only wakes status-report (Knative scales it from zero on events). An
// unmarked event carries the change for a row the monitor did not write (a resend after a crash). The change counts as done only once its
// acceptance is recorded and sealed durably (acceptedWriter), which also puts the intent and the row on disk.
func (m *Monitor) report(ctx context.Context, jobID string, prev store.JobStateRow, obs Observation, writes *pgx.Batch, st *stages) error {
	state, msg := obs.State, obs.Status
	u := ucloud.JobUpdate{State: &state, Status: &msg, Timestamp: m.Now().UnixMilli()}
	if obs.UnlessAlready {
		u.ExpectedDifferentState = &obs.UnlessAlready
	}
	seq := max(prev.Seq, prev.SentSeq) + 1
	resend := prev.SentSeq > prev.Seq && prev.SentState == state
	if resend {
		seq = prev.SentSeq
	}
	e, err := jobevents.Build(jobID, seq, u)
	if err != nil {
		return err
	}
	// The producer span covers the outbox row and the event, so the row carries the trace to Core's update.
	ctx, span := jobevents.StartSend(ctx, &e)
	defer span.End()
	if !resend {
		m.states().QueueIntent(writes, jobID, prev, seq, state)
		status.QueueOutboxInsert(writes, status.OutboxRow{EventID: e.ID(), JobID: jobID, Seq: seq, Update: e.Data(), TraceParent: tracing.TraceParent(ctx)})
		jobevents.MarkStored(&e)
	}
	listening := false
	if writes.Len() > 0 {
		if listening, err = m.writer().write(ctx, rowWrite{jobID: jobID, queue: func(b *pgx.Batch) { b.QueuedQueries = append(b.QueuedQueries, writes.QueuedQueries...) }, outbox: !resend}); err != nil {
			m.memory().doubt(jobID)
			return fmt.Errorf("record the running time and the intent to send %s for job %s: %w", state, jobID, err)
		}
	}
	if !resend {
		m.memory().set(jobID, store.JobStateRow{State: prev.State, Seq: prev.Seq, SentSeq: seq, SentState: state})
	}
	st.mark("intent")
	if err := m.send(ctx, e, !resend, listening); err != nil {
		return fmt.Errorf("send %s for job %s: %w", state, jobID, err)
	}
	st.mark("send")
	if m.accepted != nil {
		m.accepted.add(store.Accepted{JobID: jobID, Seq: seq, State: state})
	} else {
		err = m.states().RecordAccepted(ctx, jobID, seq, state)
	}
	st.mark("accepted")
	if err != nil {
		m.memory().doubt(jobID)
	} else {
		m.memory().set(jobID, store.JobStateRow{State: state, Seq: seq, SentSeq: seq, SentState: state})
		m.Metrics.Transition(string(state))
		m.Log.Info("job state changed", "job_id", jobID, "state", string(state), "seq", seq, "stages_us", st)
	}
	return err
}

// Sweep deletes final job_state rows last changed before cutoff, but only for a job that has no pod left
// (in the informer's view and in a fresh list from the apiserver) and is not an integrated application's.
// Without its row the monitor treats a job with pods as new and would report its final state again
// (with sequence 1, which status-report no longer knows once its own retention removed the old rows); a
// job without pods and without a row is never looked at again. An integrated application's job keeps its
// row: config-update reads it to learn that the job ended.
func (m *Monitor) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	after := ""
	for {
		ids, err := m.states().FinalBefore(ctx, cutoff, after, store.SweepBatch)
		if err != nil {
			return total, err
		}
		for _, id := range ids {
			after = id
			if m.pods != nil {
				if cached, err := m.pods.ByIndex(byJob, id); err != nil || len(cached) > 0 {
					continue
				}
			}
			live, err := m.Kube.CoreV1().Pods(m.Namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJobID + "=" + id, Limit: 1})
			if err != nil {
				return total, err
			}
			if len(live.Items) > 0 {
				continue
			}
			n, err := m.states().DeleteFinal(ctx, id, cutoff)
			if err != nil {
				return total, err
			}
			if n > 0 {
				m.memory().forget(id)
			}
			total += n
		}
		if len(ids) < store.SweepBatch {
			return total, nil
		}
	}
}
