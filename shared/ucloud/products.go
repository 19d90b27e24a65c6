package ucloud

import (
	"context"
	"net/http"
	"net/url"
)

// ProductCategory is a product's category as Core keeps it; its accounting unit, frequency and freeToUse
// cannot change once Core knows the category.
type ProductCategory struct {
	Name                string         `json:"name"`
	Provider            string         `json:"provider"`
	ProductType         string         `json:"productType"`
	AccountingUnit      AccountingUnit `json:"accountingUnit"`
	AccountingFrequency string         `json:"accountingFrequency"`
	FreeToUse           bool           `json:"freeToUse"`
	AllowSubAllocations bool           `json:"allowSubAllocations"`
}

// AccountingUnit is what a category is charged in.
type AccountingUnit struct {
	Name                   string `json:"name"`
	NamePlural             string `json:"namePlural"`
	FloatingPoint          bool   `json:"floatingPoint"`
	DisplayFrequencySuffix bool   `json:"displayFrequencySuffix"`
}

// Product types and accounting frequencies Core knows.
const (
	ProductTypeCompute      = "COMPUTE"
	ProductKindCompute      = "compute"
	FrequencyPeriodicMinute = "PERIODIC_MINUTE"
	FrequencyPeriodicHour   = "PERIODIC_HOUR"
	FrequencyPeriodicDay    = "PERIODIC_DAY"
)

const productsPath = "/api/products/v2"

// ProductV2 is a product as Core registers and lists it (the accounting fields Core adds on browse are
// not sent).
type ProductV2 struct {
	Type                      string          `json:"type"`
	Category                  ProductCategory `json:"category"`
	Name                      string          `json:"name"`
	Description               string          `json:"description"`
	ProductType               string          `json:"productType"`
	Price                     int64           `json:"price"`
	HiddenInGrantApplications bool            `json:"hiddenInGrantApplications"`
	CPU                       int             `json:"cpu,omitempty"`
	MemoryInGigs              int             `json:"memoryInGigs,omitempty"`
	GPU                       int             `json:"gpu,omitempty"`
}

// BrowseProducts lists every product Core holds for provider (products.v2.browse, all pages).
func (c *Client) BrowseProducts(ctx context.Context, provider string) ([]ProductV2, error) {
	return browseAll[ProductV2](ctx, c, "products.v2.browse", productsPath+"/browse", url.Values{"itemsPerPage": {"250"}, "filterProvider": {provider}})
}

// CreateProducts registers products with Core (products.v2.create); Core replaces a product of the same
// category and name.
func (c *Client) CreateProducts(ctx context.Context, products []ProductV2) error {
	return c.call(ctx, "products.v2.create", http.MethodPost, productsPath, BulkRequest[ProductV2]{Items: products}, nil, true)
}
