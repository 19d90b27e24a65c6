// Package jobs turns Core's job calls into Kubernetes objects: the product catalogue from configuration,
// what a job runs (from the application Core resolved for it), the builders of a job's pods, service and
// network policy, and the create, terminate, extend, products and interactive-session operations.
package jobs

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"

	"github.com/ucloud-im/knative-im/shared/products"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Product is a machine type users can pick.
type Product struct {
	ID        string  `json:"id"`
	Category  string  `json:"category"`
	CPU       float64 `json:"cpu"`
	MemoryGiB float64 `json:"memoryGiB"`
	GPU       int     `json:"gpu,omitempty"`
}

// Catalog is the provider's products and how each product category is charged (a category it does not
// list is charged in core-minutes). Applications are not in it: Core sends each job with the application
// it resolved (image, invocation, parameters).
type Catalog struct {
	Products   []Product           `json:"products"`
	Categories []products.Category `json:"categories,omitempty"`
}

//go:embed catalog.json
var defaultCatalog []byte

// LoadCatalog reads the catalogue from file, or the built-in example catalogue when file is empty.
func LoadCatalog(file string) (*Catalog, error) {
	raw := defaultCatalog
	if file != "" {
		var err error
		if raw, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("read catalogue: %w", err)
		}
	}
	var c Catalog
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("catalogue %s: %w", file, err)
	}
	for _, p := range c.Products {
		if p.ID == "" || p.Category == "" || p.CPU <= 0 || p.MemoryGiB <= 0 || p.GPU < 0 {
			return nil, fmt.Errorf("catalogue: product %+v needs an id, a category, cpu > 0 and memoryGiB > 0", p)
		}
	}
	if _, err := c.CoreProducts("check"); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	return &c, nil
}

// CoreProducts are the catalogue's products as Core registers them for provider.
func (c *Catalog) CoreProducts(provider string) ([]ucloud.ProductV2, error) {
	machines := make([]products.Machine, 0, len(c.Products))
	for _, p := range c.Products {
		machines = append(machines, products.Machine{ID: p.ID, Category: p.Category, CPU: p.CPU, MemoryGiB: p.MemoryGiB, GPU: p.GPU})
	}
	return products.Compute(provider, machines, c.Categories)
}

// Product finds a product by reference.
func (c *Catalog) Product(ref ucloud.ProductReference) (Product, bool) {
	for _, p := range c.Products {
		if p.ID == ref.ID && p.Category == ref.Category {
			return p, true
		}
	}
	return Product{}, false
}
