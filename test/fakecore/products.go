package fakecore

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// createProducts is products.v2.create as core2 serves it to a provider: every product must be the
// caller's own, the batch must not be empty, and a product of an existing category and name is replaced.
// A category's accounting (unit, frequency, free to use) cannot change.
func (c *Core) createProducts(w http.ResponseWriter, r *http.Request) {
	var req ucloud.BulkRequest[ucloud.ProductV2]
	if !c.strict(w, r, &req) {
		return
	}
	if len(req.Items) == 0 {
		writeError(w, http.StatusBadRequest, "no products supplied")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range req.Items {
		if p.Category.Provider != c.o.ProviderID {
			writeError(w, http.StatusForbidden, "forbidden")
			return
		}
		if p.Name == "" || p.Category.Name == "" || p.Type == "" || p.ProductType == "" || p.Category.ProductType == "" ||
			p.Category.AccountingUnit.Name == "" || p.Category.AccountingFrequency == "" {
			c.violationLocked(r, "item %d: product %+v is incomplete", i, p)
		}
		for _, old := range c.products {
			if old.Category.Name == p.Category.Name && (old.Category.AccountingUnit != p.Category.AccountingUnit ||
				old.Category.AccountingFrequency != p.Category.AccountingFrequency || old.Category.FreeToUse != p.Category.FreeToUse) {
				writeError(w, http.StatusBadRequest, "the accounting of category "+p.Category.Name+" cannot change")
				return
			}
		}
	}
	for _, p := range req.Items {
		i := slices.IndexFunc(c.products, func(old ucloud.ProductV2) bool {
			return old.Category.Name == p.Category.Name && old.Name == p.Name
		})
		if i >= 0 {
			c.products[i] = p
		} else {
			c.products = append(c.products, p)
		}
	}
	c.productCreates++
	writeJSON(w, struct{}{})
}

// browseProducts is products.v2.browse filtered by provider, a page at a time.
func (c *Core) browseProducts(w http.ResponseWriter, r *http.Request) {
	q := c.query(r, "itemsPerPage", "next", "filterProvider", "filterCategory", "filterName", "filterProductType", "filterUsable",
		"includeBalance", "includeMaxBalance")
	perPage, _ := strconv.Atoi(q.Get("itemsPerPage"))
	if perPage <= 0 || perPage > 250 {
		perPage = 50
	}
	from, _ := strconv.Atoi(q.Get("next"))
	c.mu.Lock()
	var match []ucloud.ProductV2
	for _, p := range c.products {
		if f := q.Get("filterProvider"); f != "" && p.Category.Provider != f {
			continue
		}
		if f := q.Get("filterCategory"); f != "" && !strings.EqualFold(p.Category.Name, f) {
			continue
		}
		match = append(match, p)
	}
	c.mu.Unlock()
	page := ucloud.PageV2[ucloud.ProductV2]{ItemsPerPage: perPage, Items: []ucloud.ProductV2{}}
	if from < len(match) {
		end := min(from+perPage, len(match))
		page.Items = match[from:end]
		if end < len(match) {
			next := strconv.Itoa(end)
			page.Next = &next
		}
	}
	writeJSON(w, page)
}

// Products lists the products Core holds, in registration order.
func (c *Core) Products() []ucloud.ProductV2 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ucloud.ProductV2(nil), c.products...)
}

// ProductCreates counts the products.v2.create calls Core accepted.
func (c *Core) ProductCreates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.productCreates
}
