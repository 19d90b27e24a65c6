package kube

import (
	"errors"
	"net"
	"net/url"
	"syscall"
)

// IsConnError reports an apiserver that could not be reached at all.
func IsConnError(err error) bool {
	var opErr *net.OpError
	var urlErr *url.Error
	return errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &urlErr) && urlErr.Timeout())
}
