package kube

import (
	"context"
	"errors"
	"net"
	"net/url"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// IsConnError reports an apiserver that could not be reached at all.
func IsConnError(err error) bool {
	var opErr *net.OpError
	var urlErr *url.Error
	return errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &urlErr) && urlErr.Timeout())
}

// IsUnavailable reports a failure of the cluster rather than of the request: unreachable, overloaded, timed
// out or failing inside. Callers answer it with 503 so the caller retries.
func IsUnavailable(err error) bool {
	return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || errors.Is(err, context.DeadlineExceeded) || IsConnError(err)
}
