package appdomain

import (
	"strconv"
	"strings"
)

// HostPrefix starts every app host's first label: app-<jobId>-<rank>.
const HostPrefix = "app-"

// AppHost is the host of one rank's web interface, app-<jobId>-<rank>.<domain>, in the canonical form
// CanonicalHost gives (lower case, no trailing dot), the form tokens and cookies are bound to.
func AppHost(jobID string, rank int, domain string) string {
	return strings.ToLower(HostPrefix + jobID + "-" + strconv.Itoa(rank) + "." + strings.Trim(domain, "."))
}

// CanonicalHost turns a Host header (or an Origin's host) into the one form every decision about app hosts
// uses: lower case, without port, without one trailing dot (app-1-0.example.org. names the same host). It
// refuses what is not a DNS name: empty labels, anything but letters, digits, '-' and '.', IP literals in
// brackets, a port that is not a number.
func CanonicalHost(hostport string) (string, bool) {
	host, ok := SplitPort(hostport)
	if !ok {
		return "", false
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return "", false
	}
	b := []byte(host)
	label := 0
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = -1
		default:
			return "", false
		}
		label++
		if label > 63 {
			return "", false
		}
	}
	if label == 0 { // ends in an empty label: it had two trailing dots
		return "", false
	}
	return string(b), true
}

// SplitPort splits host[:port], where port (if present) must be digits.
func SplitPort(hostport string) (host string, ok bool) {
	host, port, found := strings.Cut(hostport, ":")
	if !found {
		return host, true
	}
	if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return "", false
	}
	return host, true
}

// ParseAppHost says which job rank a canonical host names, under domain. Only
// the exact form AppHost makes is accepted (no leading zeros, no sign), so one rank has one host.
func ParseAppHost(host, domain string) (jobID string, rank int, ok bool) {
	domain = strings.ToLower(strings.Trim(domain, "."))
	label, found := strings.CutSuffix(host, "."+domain)
	if !found || domain == "" || strings.Contains(label, ".") {
		return "", 0, false
	}
	rest, found := strings.CutPrefix(label, HostPrefix)
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", 0, false
	}
	jobID = rest[:i]
	rank, err := strconv.Atoi(rest[i+1:])
	if err != nil || rank < 0 || strconv.Itoa(rank) != rest[i+1:] || strings.Trim(jobID, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return "", 0, false
	}
	return jobID, rank, true
}
