package monitor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloud-im/knative-im/shared/kube"
)

// PodSource lists and watches the job pods of namespace (those with a job id label) as the monitor keeps them:
// each pod is decoded from the apiserver's protobuf straight into a cachedPod, its spec skipped. A pod's spec
// (containers, volumes, resources) is most of its encoding, and the monitor reads none of it; decoding it
// into a corev1.Pod only for the informer's transform to drop it was the largest part of the watch's cost
// (perf: the spec's decoding alone 8% of the monitor's CPU, more in the garbage it left).
//
// It shares cs's connection, credentials and rate limit; cs must be a clientset of a real apiserver (its
// CoreV1 REST client a *rest.RESTClient).
func PodSource(cs kubernetes.Interface, namespace string) (cache.ListerWatcher, error) {
	rc, ok := cs.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil || rc.Client == nil {
		// Without its HTTP client (credentials, TLS) the source would be another, anonymous client.
		return nil, fmt.Errorf("pod source: the clientset's core REST client (%T) is not a *rest.RESTClient with an HTTP client", cs.CoreV1().RESTClient())
	}
	// The core group's base, as the clientset's own requests address it (a host may carry a path prefix).
	at := rc.Get().URL()
	base := &url.URL{Scheme: at.Scheme, Host: at.Host}
	gv := corev1.SchemeGroupVersion
	content := rest.ClientContentConfig{
		// Protobuf only: the skipping decoder is protobuf's; every apiserver serves core objects in it.
		AcceptContentTypes: runtime.ContentTypeProtobuf,
		ContentType:        runtime.ContentTypeProtobuf,
		GroupVersion:       gv,
		Negotiator:         runtime.NewClientNegotiator(podCodecs().WithoutConversion(), gv),
	}
	client, err := rest.NewRESTClient(base, at.Path, content, rc.GetRateLimiter(), rc.Client)
	if err != nil {
		return nil, fmt.Errorf("pod source: %w", err)
	}
	// As the typed client asks: the reflector's timeout both in the query and on the request.
	request := func(o metav1.ListOptions) *rest.Request {
		o.LabelSelector = kube.LabelJobID
		var timeout time.Duration
		if o.TimeoutSeconds != nil {
			timeout = time.Duration(*o.TimeoutSeconds) * time.Second
		}
		return client.Get().Namespace(namespace).Resource("pods").VersionedParams(&o, scheme.ParameterCodec).Timeout(timeout)
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list := &cachedPodList{}
			if err := request(o).Do(ctx).Into(list); err != nil {
				return nil, err
			}
			return list, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.Watch = true
			return request(o).Watch(ctx)
		},
	}, nil
}

// podCodecs decode v1 Pod and PodList into cachedPod and cachedPodList, and the meta types a list or watch
// answers with (Status for an error, WatchEvent around each change).
func podCodecs() serializer.CodecFactory {
	s := runtime.NewScheme()
	gv := corev1.SchemeGroupVersion
	s.AddKnownTypeWithName(gv.WithKind("Pod"), &cachedPod{})
	s.AddKnownTypeWithName(gv.WithKind("PodList"), &cachedPodList{})
	metav1.AddToGroupVersion(s, gv)
	return serializer.NewCodecFactory(s)
}

// The field numbers of k8s.io/api/core/v1/generated.proto.
const (
	podMetadata, podStatus  = 1, 3
	listMetadata, listItems = 1, 2
)

var errTruncatedPod = errors.New("decoding a pod: truncated protobuf")

// fields calls each for every field of a protobuf message with its number and, for a length-delimited field
// (every field of Pod and PodList), its bytes.
func fields(data []byte, each func(num protowire.Number, value []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return errTruncatedPod
		}
		data = data[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, data); n < 0 {
				return errTruncatedPod
			}
			data = data[n:]
			continue
		}
		value, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return errTruncatedPod
		}
		data = data[n:]
		if err := each(num, value); err != nil {
			return err
		}
	}
	return nil
}

// Unmarshal decodes a v1 Pod's protobuf encoding into the kept fields: its metadata and status are decoded
// by the generated code, then kept as any pod is (cachedOf); its spec is skipped.
func (c *cachedPod) Unmarshal(data []byte) error {
	var p corev1.Pod
	err := fields(data, func(num protowire.Number, value []byte) error {
		switch num {
		case podMetadata:
			return p.ObjectMeta.Unmarshal(value)
		case podStatus:
			return p.Status.Unmarshal(value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*c = *cachedOf(&p)
	return nil
}

// Reset empties c (the protobuf decoder resets before it unmarshals).
func (c *cachedPod) Reset() { *c = cachedPod{} }

// GetObjectKind: a cachedPod carries no type information (nothing reads it from the cache).
func (c *cachedPod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies c with nothing shared.
func (c *cachedPod) DeepCopyObject() runtime.Object {
	out := &cachedPod{phase: c.phase, reason: c.reason}
	c.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.startTime = c.startTime.DeepCopy()
	if c.scheduled != nil {
		out.scheduled = c.scheduled.DeepCopy()
	}
	for _, s := range c.terminated {
		out.terminated = append(out.terminated, *s.DeepCopy())
	}
	return out
}

// cachedPodList is a v1 PodList of cachedPods: what the informer's list answers.
type cachedPodList struct {
	metav1.ListMeta
	Items []cachedPod
}

// Unmarshal decodes a v1 PodList's protobuf encoding, each item as a cachedPod.
func (l *cachedPodList) Unmarshal(data []byte) error {
	return fields(data, func(num protowire.Number, value []byte) error {
		switch num {
		case listMetadata:
			return l.ListMeta.Unmarshal(value)
		case listItems:
			var c cachedPod
			if err := c.Unmarshal(value); err != nil {
				return err
			}
			l.Items = append(l.Items, c)
		}
		return nil
	})
}

// Reset empties l.
func (l *cachedPodList) Reset() { *l = cachedPodList{} }

// GetObjectKind: no type information, as cachedPod.
func (l *cachedPodList) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies l with nothing shared.
func (l *cachedPodList) DeepCopyObject() runtime.Object {
	out := &cachedPodList{}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range l.Items {
		out.Items = append(out.Items, *l.Items[i].DeepCopyObject().(*cachedPod))
	}
	return out
}
