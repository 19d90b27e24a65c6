// Package products says which products the provider sells and registers them with UCloud/Core. Core
// applies a provider's support flags (web sessions, time extension) only to products it knows, and the
// web UI finds a provider's Syncthing through its product, so every product must be registered before
// users can use it.
package products

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Machine is a compute product from the provider's catalogue.
type Machine struct {
	ID, Category string
	CPU          float64
	MemoryGiB    float64
	GPU          int
}

// Category is how a compute category is charged. Unit is "Core", "GPU" or "GB"; a product's price is its
// number of those units per Frequency period (the original IM's resource-based payment).
type Category struct {
	Name      string `json:"name"`
	Unit      string `json:"unit"`
	Frequency string `json:"frequency"`
}

// Defaults for a category the catalogue does not describe.
const (
	DefaultUnit      = "Core"
	DefaultFrequency = ucloud.FrequencyPeriodicMinute
)

// Compute makes the products Core is told about for the catalogue's machines.
func Compute(provider string, machines []Machine, categories []Category) ([]ucloud.ProductV2, error) {
	byName := map[string]Category{}
	for _, c := range categories {
		byName[c.Name] = c
	}
	out := make([]ucloud.ProductV2, 0, len(machines))
	for _, m := range machines {
		c, ok := byName[m.Category]
		if !ok {
			c = Category{Name: m.Category}
		}
		if c.Unit == "" {
			c.Unit = DefaultUnit
		}
		if c.Frequency == "" {
			c.Frequency = DefaultFrequency
		}
		var price float64
		switch c.Unit {
		case "Core":
			price = m.CPU
		case "GPU":
			price = float64(m.GPU)
		case "GB":
			price = m.MemoryGiB
		default:
			return nil, fmt.Errorf("category %s: unit %q is not Core, GPU or GB", c.Name, c.Unit)
		}
		switch c.Frequency {
		case ucloud.FrequencyPeriodicMinute, ucloud.FrequencyPeriodicHour, ucloud.FrequencyPeriodicDay:
		default:
			return nil, fmt.Errorf("category %s: frequency %q is not PERIODIC_MINUTE, PERIODIC_HOUR or PERIODIC_DAY", c.Name, c.Frequency)
		}
		if price < 1 || price != float64(int64(price)) {
			return nil, fmt.Errorf("product %s: a price of %v %s per period is not a whole number of at least 1", m.ID, price, c.Unit)
		}
		out = append(out, ucloud.ProductV2{
			Type: ucloud.ProductKindCompute, ProductType: ucloud.ProductTypeCompute,
			Category: ucloud.ProductCategory{Name: c.Name, Provider: provider, ProductType: ucloud.ProductTypeCompute,
				AccountingUnit:      ucloud.AccountingUnit{Name: c.Unit, NamePlural: c.Unit, DisplayFrequencySuffix: true},
				AccountingFrequency: c.Frequency, AllowSubAllocations: true},
			Name: m.ID, Description: fmt.Sprintf("%g CPU, %g GiB memory, %d GPU", m.CPU, m.MemoryGiB, m.GPU),
			Price: int64(price), CPU: int(m.CPU), MemoryInGigs: int(m.MemoryGiB), GPU: m.GPU,
		})
	}
	return out, nil
}

// IntegratedApp is the product of an integrated application (syncthing, terminal): free, hidden from
// grant applications, one per application, as the original IM registers them.
func IntegratedApp(provider, app string) ucloud.ProductV2 {
	return ucloud.ProductV2{
		Type: ucloud.ProductKindCompute, ProductType: ucloud.ProductTypeCompute,
		Category: ucloud.ProductCategory{Name: app, Provider: provider, ProductType: ucloud.ProductTypeCompute,
			AccountingUnit:      ucloud.AccountingUnit{Name: "Core", NamePlural: "Core", DisplayFrequencySuffix: true},
			AccountingFrequency: ucloud.FrequencyPeriodicHour, FreeToUse: true},
		Name: app, Description: "Product for the integrated application " + app, Price: 1,
		HiddenInGrantApplications: true, CPU: 1, MemoryInGigs: 1,
	}
}

// Core is the part of the Core client registration needs.
type Core interface {
	BrowseProducts(ctx context.Context, provider string) ([]ucloud.ProductV2, error)
	CreateProducts(ctx context.Context, products []ucloud.ProductV2) error
}

// ErrCategoryChanged is a category whose accounting Core will not change (unit, frequency, free to use):
// the operator must name a new category instead.
var ErrCategoryChanged = errors.New("Core already has this category with other accounting; use a new category name")

// Register makes Core hold exactly the wanted products, asking it what it has first, so a category is
// sent only when one of its products is new or different: repeating it (every start-up, every instance)
// sends nothing once Core is up to date. It returns the categories it sent. Products Core has that are
// not wanted are left alone (Core has no way to remove them; users' allocations may refer to them).
func Register(ctx context.Context, core Core, provider string, wanted []ucloud.ProductV2) ([]string, error) {
	have, err := core.BrowseProducts(ctx, provider)
	if err != nil {
		return nil, fmt.Errorf("list the products Core has: %w", err)
	}
	type key struct{ category, name string }
	existing := map[key]ucloud.ProductV2{}
	existingCategory := map[string]ucloud.ProductCategory{}
	for _, p := range have {
		existing[key{p.Category.Name, p.Name}] = p
		existingCategory[p.Category.Name] = p.Category
	}
	byCategory := map[string][]ucloud.ProductV2{}
	for _, p := range wanted {
		byCategory[p.Category.Name] = append(byCategory[p.Category.Name], p)
	}
	var sent []string
	for _, name := range slices.Sorted(maps.Keys(byCategory)) {
		items := byCategory[name]
		if old, ok := existingCategory[name]; ok {
			nc := items[0].Category
			if old.AccountingUnit != nc.AccountingUnit || old.AccountingFrequency != nc.AccountingFrequency || old.FreeToUse != nc.FreeToUse {
				return sent, fmt.Errorf("category %s (Core: %s per %s, free %v; catalogue: %s per %s, free %v): %w", name,
					old.AccountingUnit.Name, old.AccountingFrequency, old.FreeToUse, nc.AccountingUnit.Name, nc.AccountingFrequency, nc.FreeToUse, ErrCategoryChanged)
			}
		}
		changed := false
		for _, p := range items {
			if old, ok := existing[key{name, p.Name}]; !ok || old != p {
				changed = true
				break
			}
		}
		if !changed {
			continue
		}
		if err := core.CreateProducts(ctx, items); err != nil {
			return sent, fmt.Errorf("register the products of category %s: %w", name, err)
		}
		sent = append(sent, name)
	}
	return sent, nil
}
