package streams

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// Follower streams the output of a job's ranks from the apiserver (pods/log, followed), as a kubectl logs -f
// per rank would: the IM reads no files of the job.
type Follower struct {
	Kube      kubernetes.Interface
	Namespace string
	// TailLines bounds what a follow starts with: the last lines of each rank's log, then what follows.
	TailLines int64
	// EndGrace is how long the ranks' streams may go on delivering after the job ended (a kubelet ends a
	// finished container's stream by itself once its last lines are sent); then they are cut.
	EndGrace time.Duration
	// Retry is how long to wait before asking again for a log the apiserver cannot give yet (a container
	// still starting).
	Retry time.Duration
}

// Follow sends each rank's output to send, per rank in order, until the job ends (nil) or ctx ends (its
// error). It returns only once every goroutine it started has returned. send is called from several
// goroutines, one per rank, and must block (not drop) while its reader is slow.
func (f *Follower) Follow(ctx context.Context, jobID string, send func(rank int, data string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	pods := f.Kube.CoreV1().Pods(f.Namespace)
	selector := kube.LabelJobID + "=" + jobID
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return pods.Watch(ctx, o)
		},
	}
	store, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw, ObjectType: &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke},
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		informer.RunWithContext(ctx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return ctx.Err()
	}

	// One stream per pod (by uid): a rank whose pod is replaced gets a new stream, the old one is cut.
	type stream struct {
		uid    types.UID
		cancel context.CancelFunc
		done   chan struct{}
	}
	streams := map[int]*stream{}
	for {
		ended := jobEnded(store.List())
		for _, obj := range store.List() {
			pod := obj.(*corev1.Pod)
			rank, err := strconv.Atoi(pod.Labels[kube.LabelRank])
			if err != nil || pod.Name != kube.PodName(jobID, rank) {
				continue // not a pod job-create makes: never read it
			}
			switch pod.Status.Phase {
			case corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed:
			default:
				continue
			}
			if s := streams[rank]; s != nil && s.uid == pod.UID {
				continue
			} else if s != nil {
				s.cancel()
			}
			sctx, scancel := context.WithCancel(ctx)
			s := &stream{uid: pod.UID, cancel: scancel, done: make(chan struct{})}
			streams[rank] = s
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				defer close(s.done)
				f.stream(sctx, name, func(data string) error { return send(rank, data) })
			}(pod.Name)
		}
		if ended {
			graceCtx, stop := context.WithTimeout(ctx, f.EndGrace)
			defer stop()
			for _, s := range streams {
				select {
				case <-s.done:
				case <-graceCtx.Done():
				}
			}
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kick:
		}
	}
}

// jobEnded says whether a job with these pods has ended: no pods left (terminated, or never made), any
// pod being deleted (terminate) or failed (the job fails), or every rank succeeded.
func jobEnded(objs []any) bool {
	if len(objs) == 0 {
		return true
	}
	succeeded, replicas := 0, 1
	for _, obj := range objs {
		pod := obj.(*corev1.Pod)
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			return true
		}
		if pod.Status.Phase == corev1.PodSucceeded {
			succeeded++
		}
		if n, err := strconv.Atoi(pod.Annotations[kube.AnnotationReplicas]); err == nil && n > replicas {
			replicas = n
		}
	}
	return succeeded >= replicas
}

// stream follows one pod's log until it ends or ctx ends, sending what arrives as it arrives. A log the
// apiserver cannot give yet is asked for again every Retry.
func (f *Follower) stream(ctx context.Context, pod string, send func(string) error) {
	opts := &corev1.PodLogOptions{Container: kube.ContainerName, Follow: true}
	if f.TailLines > 0 {
		opts.TailLines = &f.TailLines
	}
	var rc io.ReadCloser
	for {
		var err error
		rc, err = f.Kube.CoreV1().Pods(f.Namespace).GetLogs(pod, opts).Stream(ctx)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.Retry):
		}
	}
	defer rc.Close()
	// Closing the body ends a Read blocked on a follow that has nothing new.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	buf := make([]byte, 32<<10)
	var carry []byte
	for {
		n, err := rc.Read(buf[len(carry):])
		if n > 0 {
			chunk := buf[:len(carry)+n]
			// Hold back a rune cut at the end of the read: it is completed by the next.
			cut := incompleteRune(chunk)
			if len(chunk)-cut > 0 {
				if send(string(chunk[:len(chunk)-cut])) != nil {
					return
				}
			}
			carry = append(carry[:0], chunk[len(chunk)-cut:]...)
			copy(buf, carry)
		}
		if err != nil {
			if len(carry) > 0 && !errors.Is(err, context.Canceled) {
				_ = send(string(carry))
			}
			return
		}
	}
}

// incompleteRune is the number of bytes at the end of b that begin a UTF-8 sequence not yet complete.
func incompleteRune(b []byte) int {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return 0 // ASCII: nothing pending
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}
