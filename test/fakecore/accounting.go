package fakecore

import (
	"net/http"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// UsageReport is one usage report Core applied, with when it arrived.
type UsageReport struct {
	ucloud.ReportUsageRequest
	At time.Time `json:"at"`
}

// accountingState is what core2's accounting keeps of the reports: per owner and scope the usage an
// absolute report replaces, and per owner and category the wallet's usage.
type accountingState struct {
	reports []UsageReport
	scopes  map[scopeKey]int64
	wallets map[walletKey]int64
}

type scopeKey struct{ owner, scope string }

type walletKey struct {
	owner    string
	category ucloud.ProductCategoryIDV2
}

// accounting registers accounting.v2.reportUsage, and its inspection (GET /_fakecore/usage).
func (c *Core) accounting(core, inspect *http.ServeMux) {
	core.HandleFunc("POST /api/accounting/v2/reportUsage", c.authed(c.reportUsage))
	inspect.HandleFunc("GET "+InspectPrefix+"usage", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.UsageReports()) })
}

// reportUsage is accounting.v2.reportUsage as core2 serves a provider (accounting.ReportUsage): items are
// applied one by one, in order, and the first one refused fails the call with 403 (the ones before it
// stay applied): a category of another provider, a category Core does not know, an owner that is not a
// user or project Core knows, a negative absolute usage. A free category is answered true and not charged.
// With a scope, an absolute report (isDeltaCharge false) replaces that scope's usage and the wallet moves
// by the difference; a delta adds. The answer is true per item (no wallet is ever locked here).
func (c *Core) reportUsage(w http.ResponseWriter, r *http.Request) {
	var req ucloud.BulkRequest[ucloud.ReportUsageRequest]
	if !c.strict(w, r, &req) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acct.scopes == nil {
		c.acct.scopes, c.acct.wallets = map[scopeKey]int64{}, map[walletKey]int64{}
	}
	var resp ucloud.BulkResponse[bool]
	for _, it := range req.Items {
		if it.CategoryIDV2.Provider != c.o.ProviderID {
			writeError(w, http.StatusForbidden, "You cannot report usage for this product")
			return
		}
		free, ok := c.categoryLocked(it.CategoryIDV2)
		if !ok {
			writeError(w, http.StatusForbidden, "This category does not exist")
			return
		}
		if !c.ownerKnownLocked(it.Owner) {
			writeError(w, http.StatusForbidden, "This user/project does not exist")
			return
		}
		if !it.IsDeltaCharge && it.Usage < 0 {
			writeError(w, http.StatusForbidden, "Absolute usage cannot be negative")
			return
		}
		resp.Responses = append(resp.Responses, true)
		if free {
			continue
		}
		owner := it.Owner.Reference()
		wallet := walletKey{owner, it.CategoryIDV2}
		current := c.acct.wallets[wallet]
		var sk scopeKey
		if it.Description.Scope != nil {
			sk = scopeKey{owner, *it.Description.Scope}
			current = c.acct.scopes[sk]
		}
		delta := it.Usage
		if !it.IsDeltaCharge {
			delta = it.Usage - current
		}
		if it.Description.Scope != nil {
			c.acct.scopes[sk] = current + delta
		}
		c.acct.wallets[wallet] += delta
		c.acct.reports = append(c.acct.reports, UsageReport{ReportUsageRequest: it, At: time.Now()})
	}
	writeJSON(w, resp)
}

// categoryLocked finds a category among the products Core holds: whether it is free to use, and whether
// it exists.
func (c *Core) categoryLocked(id ucloud.ProductCategoryIDV2) (free, ok bool) {
	for _, p := range c.products {
		if p.Category.Name == id.Name && p.Category.Provider == id.Provider {
			return p.Category.FreeToUse, true
		}
	}
	return false, false
}

// ownerKnownLocked says whether Core knows the owner (core2 looks the user or project up): here, the
// owners of the jobs it knows.
func (c *Core) ownerKnownLocked(o ucloud.WalletOwner) bool {
	for _, j := range c.jobs {
		switch {
		case o.Type == ucloud.WalletOwnerUser && o.Username != "" && j.Owner.CreatedBy == o.Username:
			return true
		case o.Type == ucloud.WalletOwnerProject && o.ProjectID != "" && j.Owner.Project != nil && *j.Owner.Project == o.ProjectID:
			return true
		}
	}
	return false
}

// UsageReports lists the charged usage reports Core applied, in order (free categories' are not listed).
func (c *Core) UsageReports() []UsageReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]UsageReport(nil), c.acct.reports...)
}

// ScopeUsage is the usage Core holds for an owner (username or project id) and scope (job-<id>).
func (c *Core) ScopeUsage(owner, scope string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acct.scopes[scopeKey{owner, scope}]
}

// WalletUsage is the usage Core holds for an owner in a category.
func (c *Core) WalletUsage(owner string, category ucloud.ProductCategoryIDV2) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acct.wallets[walletKey{owner, category}]
}
