package fakecore

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

const accessRole = "PROVIDER"

// providerSubjectPrefix starts the subject of a provider's access token (fndapi.ProviderSubjectPrefix).
const providerSubjectPrefix = "#P_"

func (c *Core) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/providers/refresh", c.refresh)
	mux.HandleFunc("POST /api/jobs/control/update", c.authed(c.update))
	mux.HandleFunc("POST /api/jobs/control/register", c.authed(c.register))
	mux.HandleFunc("GET /api/jobs/control/retrieve", c.authed(c.retrieve))
	mux.HandleFunc("GET /api/jobs/control/browse", c.authed(c.browse))
	mux.HandleFunc("POST /api/products/v2", c.authed(c.createProducts))
	mux.HandleFunc("GET /api/products/v2/browse", c.authed(c.browseProducts))
	mux.HandleFunc("GET /api/files/collections/control/retrieve", c.authed(c.retrieveDrive))
	mux.Handle("GET /api/accounting/notifications", c.notifications())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.violation(r, "no such call in the wire reference")
		writeError(w, http.StatusNotFound, "Unknown call")
	})
	recorded := c.record(mux)
	// Inspection for people and outside tests (make run's walkthrough): not Core calls, so neither recorded
	// nor checked against the wire reference.
	inspect := http.NewServeMux()
	inspect.HandleFunc("GET "+InspectPrefix+"updates", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Updates()) })
	inspect.HandleFunc("GET "+InspectPrefix+"violations", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Violations()) })
	// A client that plays Core's half of a create itself (make run's walkthrough calls the IM directly) says
	// here that Core confirmed these jobs, as core2 does after the provider's 2xx.
	inspect.HandleFunc("POST "+InspectPrefix+"jobs", func(w http.ResponseWriter, r *http.Request) {
		var req ucloud.BulkRequest[ucloud.Job]
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "Bad request: "+err.Error())
			return
		}
		for _, j := range req.Items {
			c.PutJob(j)
		}
		writeJSON(w, struct{}{})
	})
	inspect.HandleFunc("GET "+InspectPrefix+"products", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Products()) })
	inspect.HandleFunc("GET "+InspectPrefix+"registered", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Registered()) })
	c.accounting(mux, inspect)
	c.driveSetup(inspect)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, InspectPrefix) {
			inspect.ServeHTTP(w, r)
			return
		}
		recorded.ServeHTTP(w, r)
	})
}

// InspectPrefix is where the fake answers what it received: updates, violations, registered (GET, JSON).
const InspectPrefix = "/_fakecore/"

// record keeps every request and applies the faults queued for its path.
func (c *Core) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.mu.Lock()
		c.received = append(c.received, Request{Method: r.Method, Path: r.URL.Path, Body: body, At: time.Now()})
		var f *fault
		if q := c.faults[r.URL.Path]; len(q) > 0 {
			f = q[0]
			switch {
			case !f.until.IsZero() && time.Now().After(f.until):
				c.faults[r.URL.Path], f = q[1:], nil
			case f.until.IsZero():
				f.times--
				if f.times <= 0 {
					c.faults[r.URL.Path] = q[1:]
				}
			}
		}
		c.mu.Unlock()
		if c.o.Log != nil {
			c.o.Log("%s %s %s", r.Method, r.URL.RequestURI(), strings.TrimSpace(string(body)))
		}
		if f != nil && f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-r.Context().Done():
				return
			}
		}
		if f != nil && f.status != 0 {
			writeError(w, f.status, "Injected failure")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// strict decodes the body into v, refusing unknown fields, wrong types and trailing data.
func (c *Core) strict(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.violation(r, "Content-Type %q, want application/json", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		c.violation(r, "body does not match the wire format: %v", err)
		writeError(w, http.StatusBadRequest, "Bad request: "+err.Error())
		return false
	}
	if dec.More() {
		c.violation(r, "trailing data after the JSON body")
		writeError(w, http.StatusBadRequest, "Bad request")
		return false
	}
	return true
}

func (c *Core) refresh(w http.ResponseWriter, r *http.Request) {
	var req ucloud.BulkRequest[ucloud.RefreshRequest]
	if !c.strict(w, r, &req) {
		return
	}
	if len(req.Items) != 1 {
		c.violation(r, "%d items, want exactly 1", len(req.Items))
	}
	resp := ucloud.BulkResponse[ucloud.AccessToken]{}
	for _, it := range req.Items {
		if it.RefreshToken != c.o.RefreshToken {
			writeError(w, http.StatusUnauthorized, "Invalid refresh token")
			return
		}
		now := time.Now()
		// As core2 signs a provider's access token (foundation.ProviderRefresh).
		tok := c.Sign(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": "cloud.sdu.dk", "sub": providerSubjectPrefix + c.o.ProviderID, "role": accessRole,
			"principalType": "provider", "aud": []string{"all:write"},
			"iat": now.Unix(), "exp": now.Add(c.o.AccessTokenTTL).Unix(),
		})
		resp.Responses = append(resp.Responses, ucloud.AccessToken{AccessToken: tok})
	}
	c.mu.Lock()
	c.refreshes++
	c.mu.Unlock()
	writeJSON(w, resp)
}

// authed accepts only access tokens this fake issued and that have not expired.
func (c *Core) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims := jwt.MapClaims{}
		if ok {
			_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()).
				ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &c.o.Key.PublicKey, nil })
			ok = err == nil && claims["role"] == accessRole
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		next(w, r)
	}
}

func (c *Core) update(w http.ResponseWriter, r *http.Request) {
	var req ucloud.BulkRequest[ucloud.ResourceUpdateAndID[ucloud.JobUpdate]]
	if !c.strict(w, r, &req) {
		return
	}
	if len(req.Items) == 0 {
		c.violation(r, "no items")
	}
	now := time.Now().UnixMilli()
	for i, it := range req.Items {
		u := it.Update
		switch {
		case it.ID == "":
			c.violation(r, "item %d has no job id", i)
		case u.Timestamp <= 0:
			c.violation(r, "item %d (job %s) has timestamp %d: Core needs the real time of the change", i, it.ID, u.Timestamp)
		case u.Timestamp > now+60_000:
			c.violation(r, "item %d (job %s) has a timestamp in the future", i, it.ID)
		case u.State != nil && !u.State.Valid():
			c.violation(r, "item %d (job %s) has unknown state %q", i, it.ID, *u.State)
		case u.ExpectedState != nil && !u.ExpectedState.Valid():
			c.violation(r, "item %d (job %s) has unknown expectedState %q", i, it.ID, *u.ExpectedState)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// core2 validates the whole batch first (ResourceValidateProviderBatch): one job it does not know and
	// nothing of the batch is applied.
	if c.o.RequireKnownJobs {
		for _, it := range req.Items {
			if _, ok := c.jobs[it.ID]; !ok {
				writeError(w, http.StatusNotFound, "not found or permission denied ("+it.ID+")")
				return
			}
		}
	}
	// core2 stamps every update with its own clock when it applies it.
	for _, it := range req.Items {
		it.Update.Timestamp = now
		c.updates = append(c.updates, it)
		c.applyLocked(it.ID, it.Update)
	}
	writeJSON(w, struct{}{})
}

func (c *Core) register(w http.ResponseWriter, r *http.Request) {
	var req ucloud.BulkRequest[ucloud.ProviderRegisteredResource[ucloud.JobSpecification]]
	if !c.strict(w, r, &req) {
		return
	}
	resp := ucloud.BulkResponse[ucloud.FindByStringID]{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, it := range req.Items {
		if it.Spec.Product.Provider != c.o.ProviderID {
			writeError(w, http.StatusForbidden, "forbidden")
			return
		}
	}
	for i, it := range req.Items {
		s := it.Spec
		if s.Product.ID == "" || s.Product.Category == "" || s.Product.Provider == "" {
			c.violationLocked(r, "item %d: product %+v is incomplete", i, s.Product)
		}
		if s.Application.Name == "" || s.Application.Version == "" {
			c.violationLocked(r, "item %d: application %+v is incomplete", i, s.Application)
		}
		if s.Replicas < 1 {
			c.violationLocked(r, "item %d: replicas %d", i, s.Replicas)
		}
		if s.Parameters == nil || s.Resources == nil {
			c.violationLocked(r, "item %d: parameters and resources must be sent ({} and [])", i)
		}
		if it.CreatedBy == nil || *it.CreatedBy == "" {
			c.violationLocked(r, "item %d: createdBy missing", i)
		}
		// core2 reserves a provider-generated id once per provider (ResourceCreateEx): a repeat is 409 for
		// the call, and the items before it stay registered.
		if it.ProviderGeneratedID != nil {
			if _, ok := c.byProviderID[*it.ProviderGeneratedID]; ok {
				writeError(w, http.StatusConflict, "already exists")
				return
			}
		}
		id := strconv.Itoa(c.nextID)
		c.nextID++
		job := ucloud.Job{ID: id, CreatedAt: time.Now().UnixMilli(), Owner: ucloud.ResourceOwner{CreatedBy: deref(it.CreatedBy), Project: it.Project},
			Specification: s, Status: ucloud.JobStatus{State: ucloud.StateInQueue}, Updates: []ucloud.JobUpdate{}}
		if it.ProviderGeneratedID != nil {
			c.byProviderID[*it.ProviderGeneratedID] = id
			job.ProviderGeneratedID = *it.ProviderGeneratedID
		}
		c.registered = append(c.registered, it)
		c.jobs[id] = job
		resp.Responses = append(resp.Responses, ucloud.FindByStringID{ID: id})
	}
	writeJSON(w, resp)
}

func (c *Core) retrieve(w http.ResponseWriter, r *http.Request) {
	q, id, ok := c.retrieveQuery(w, r, "id", "includeProduct", "includeApplication", "includeUpdates", "includeParameters")
	if !ok {
		return
	}
	c.mu.Lock()
	job, ok := c.jobs[id]
	c.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, withFlags(job, q))
}

// applyLocked applies an update to a known job as core2 does: expectedState and expectedDifferentState
// guard it, a final state is never left, and an update applied is added to the job's updates (what the
// user sees) even when the state does not change.
func (c *Core) applyLocked(id string, u ucloud.JobUpdate) {
	job, ok := c.jobs[id]
	if !ok {
		return
	}
	apply := true
	switch {
	case u.ExpectedState != nil:
		apply = job.Status.State == *u.ExpectedState
	case u.ExpectedDifferentState != nil && *u.ExpectedDifferentState && u.State != nil:
		apply = job.Status.State != *u.State
	}
	if u.State != nil && job.Status.State.Final() && !u.State.Final() {
		apply = false
	}
	if !apply {
		return
	}
	job.Updates = append(job.Updates, u)
	if u.State != nil && job.Status.State != *u.State {
		job.Status.State = *u.State
		c.transitions[id] = append(c.transitions[id], *u.State)
	}
	c.jobs[id] = job
}

// JobUpdates lists the updates Core applied to a job it knows, as its users see them (updates its rules
// skipped are not listed).
func (c *Core) JobUpdates(id string) []ucloud.JobUpdate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ucloud.JobUpdate(nil), c.jobs[id].Updates...)
}

// browse is jobs.control.browse as core2 serves it to a provider: its jobs, a page at a time, filtered by
// the flags a provider uses (filterProviderIds: a comma-separated list of provider-generated ids).
func (c *Core) browse(w http.ResponseWriter, r *http.Request) {
	q := c.query(r, "itemsPerPage", "next", "filterProviderIds", "filterIds", "filterState", "includeProduct", "includeApplication",
		"includeUpdates", "includeParameters", "includeOthers", "includeSupport")
	perPage, err := strconv.Atoi(q.Get("itemsPerPage"))
	if q.Get("itemsPerPage") != "" && err != nil {
		c.violation(r, "itemsPerPage %q is not a number", q.Get("itemsPerPage"))
		writeError(w, http.StatusBadRequest, "Bad request")
		return
	}
	if perPage <= 0 || perPage > 250 {
		perPage = 50
	}
	var want map[string]bool
	if f := q.Get("filterProviderIds"); f != "" {
		want = map[string]bool{}
		for _, id := range strings.Split(f, ",") {
			want[id] = true
		}
	}
	var wantIDs map[string]bool
	if f := q.Get("filterIds"); f != "" {
		wantIDs = map[string]bool{}
		for _, id := range strings.Split(f, ",") {
			wantIDs[id] = true
		}
	}
	c.mu.Lock()
	ids := make([]string, 0, len(c.jobs))
	for id, j := range c.jobs {
		if (want != nil && !want[j.ProviderGeneratedID]) || (wantIDs != nil && !wantIDs[id]) {
			continue
		}
		ids = append(ids, id)
	}
	// Core's ids are numbers: in id order, shorter first.
	byID := func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) }
	slices.SortFunc(ids, byID)
	after := q.Get("next")
	page := ucloud.PageV2[ucloud.Job]{ItemsPerPage: perPage, Items: []ucloud.Job{}}
	for _, id := range ids {
		if after != "" && byID(id, after) <= 0 {
			continue
		}
		if len(page.Items) == perPage {
			next := page.Items[len(page.Items)-1].ID
			page.Next = &next
			break
		}
		page.Items = append(page.Items, withFlags(c.jobs[id], q))
	}
	c.mu.Unlock()
	writeJSON(w, page)
}

func (c *Core) violationLocked(r *http.Request, format string, args ...any) {
	c.mu.Unlock()
	defer c.mu.Lock()
	c.violation(r, format, args...)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, why string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ucloud.Error{Why: why, StatusCode: status})
}
