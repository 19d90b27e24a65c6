package fakecore

import (
	"net/http"
	"net/url"
	"slices"
)

// query is the request's query; each parameter not in allowed is a violation (core2 never sends it).
func (c *Core) query(r *http.Request, allowed ...string) url.Values {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(allowed, k) {
			c.violation(r, "unknown query parameter %q", k)
		}
	}
	return q
}

// retrieveQuery is a retrieve call's query (allowed, as query checks it) and its id; without an id it is a
// violation, answered 400, and ok is false.
func (c *Core) retrieveQuery(w http.ResponseWriter, r *http.Request, allowed ...string) (q url.Values, id string, ok bool) {
	q = c.query(r, allowed...)
	id = q.Get("id")
	if id == "" {
		c.violation(r, "no id")
		writeError(w, http.StatusBadRequest, "Missing id")
		return q, "", false
	}
	return q, id, true
}
