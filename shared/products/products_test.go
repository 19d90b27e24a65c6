package products_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/ucloud-im/knative-im/shared/products"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

func TestComputeProducts(t *testing.T) {
	unit := func(name string) ucloud.AccountingUnit {
		return ucloud.AccountingUnit{Name: name, NamePlural: name, DisplayFrequencySuffix: true}
	}
	cat := func(name, u, freq string) ucloud.ProductCategory {
		return ucloud.ProductCategory{Name: name, Provider: "k8s", ProductType: "COMPUTE", AccountingUnit: unit(u), AccountingFrequency: freq, AllowSubAllocations: true}
	}
	tests := []struct {
		name       string
		machines   []products.Machine
		categories []products.Category
		want       []ucloud.ProductV2
		err        string
	}{{
		name:     "core-minutes by default",
		machines: []products.Machine{{ID: "u1-standard-4", Category: "u1-standard", CPU: 4, MemoryGiB: 16}},
		want: []ucloud.ProductV2{{Type: "compute", ProductType: "COMPUTE", Category: cat("u1-standard", "Core", "PERIODIC_MINUTE"),
			Name: "u1-standard-4", Description: "4 CPU, 16 GiB memory, 0 GPU", Price: 4, CPU: 4, MemoryInGigs: 16}},
	}, {
		name:       "GPU-hours when the catalogue says so",
		machines:   []products.Machine{{ID: "u1-gpu-2", Category: "u1-gpu", CPU: 16, MemoryGiB: 128, GPU: 2}},
		categories: []products.Category{{Name: "u1-gpu", Unit: "GPU", Frequency: "PERIODIC_HOUR"}},
		want: []ucloud.ProductV2{{Type: "compute", ProductType: "COMPUTE", Category: cat("u1-gpu", "GPU", "PERIODIC_HOUR"),
			Name: "u1-gpu-2", Description: "16 CPU, 128 GiB memory, 2 GPU", Price: 2, CPU: 16, MemoryInGigs: 128, GPU: 2}},
	}, {
		name:       "GPU unit on a machine without GPUs",
		machines:   []products.Machine{{ID: "u1-standard-1", Category: "u1-standard", CPU: 1, MemoryGiB: 4}},
		categories: []products.Category{{Name: "u1-standard", Unit: "GPU"}},
		err:        "product u1-standard-1: a price of 0 GPU per period is not a whole number of at least 1",
	}, {
		name:       "unknown unit",
		machines:   []products.Machine{{ID: "x", Category: "c", CPU: 1, MemoryGiB: 1}},
		categories: []products.Category{{Name: "c", Unit: "DKK"}},
		err:        `category c: unit "DKK" is not Core, GPU or GB`,
	}, {
		name:       "once is not a compute frequency",
		machines:   []products.Machine{{ID: "x", Category: "c", CPU: 1, MemoryGiB: 1}},
		categories: []products.Category{{Name: "c", Frequency: "ONCE"}},
		err:        `category c: frequency "ONCE" is not PERIODIC_MINUTE, PERIODIC_HOUR or PERIODIC_DAY`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := products.Compute("k8s", tc.machines, tc.categories)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v (%v)\nwant %+v", got, err, tc.want)
			}
		})
	}
}

func TestIntegratedAppProduct(t *testing.T) {
	want := ucloud.ProductV2{Type: "compute", ProductType: "COMPUTE",
		Category: ucloud.ProductCategory{Name: "syncthing", Provider: "k8s", ProductType: "COMPUTE",
			AccountingUnit:      ucloud.AccountingUnit{Name: "Core", NamePlural: "Core", DisplayFrequencySuffix: true},
			AccountingFrequency: "PERIODIC_HOUR", FreeToUse: true},
		Name: "syncthing", Description: "Product for the integrated application syncthing", Price: 1,
		HiddenInGrantApplications: true, CPU: 1, MemoryInGigs: 1}
	if got := products.IntegratedApp("k8s", "syncthing"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func client(t *testing.T, core *fakecore.Core) *ucloud.Client {
	c, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Registration sends a category only when Core lacks one of its products or holds it differently: the
// first start registers everything, a restart sends nothing, a changed price re-sends that category only.
func TestRegisterOncePerChange(t *testing.T) {
	core := fakecore.Start(t)
	c := client(t, core)
	ctx := context.Background()
	compute, err := products.Compute("k8s", []products.Machine{
		{ID: "u1-standard-1", Category: "u1-standard", CPU: 1, MemoryGiB: 4},
		{ID: "u1-standard-4", Category: "u1-standard", CPU: 4, MemoryGiB: 16},
		{ID: "u1-gpu-1", Category: "u1-gpu", CPU: 8, MemoryGiB: 64, GPU: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wanted := append(compute, products.IntegratedApp("k8s", "syncthing"), products.IntegratedApp("k8s", "terminal"))
	sent, err := products.Register(ctx, c, "k8s", wanted)
	if err != nil || !slices.Equal(sent, []string{"syncthing", "terminal", "u1-gpu", "u1-standard"}) || core.ProductCreates() != 4 {
		t.Fatalf("first registration sent %v (%v), %d create calls", sent, err, core.ProductCreates())
	}
	if got := core.Products(); len(got) != 5 {
		t.Fatalf("Core holds %d products, want 5", len(got))
	}
	sent, err = products.Register(ctx, c, "k8s", wanted)
	if err != nil || len(sent) != 0 || core.ProductCreates() != 4 {
		t.Fatalf("a repeated registration sent %v (%v), %d create calls", sent, err, core.ProductCreates())
	}
	wanted[1].Price = 5
	sent, err = products.Register(ctx, c, "k8s", wanted)
	if err != nil || !slices.Equal(sent, []string{"u1-standard"}) || core.ProductCreates() != 5 {
		t.Fatalf("after a price change sent %v (%v), %d create calls", sent, err, core.ProductCreates())
	}
	// Core will not change a category's accounting: the operator is told to name a new category, and
	// nothing is sent.
	changed := slices.Clone(wanted)
	changed[2].Category.AccountingFrequency = "PERIODIC_HOUR"
	sent, err = products.Register(ctx, c, "k8s", changed)
	if !errors.Is(err, products.ErrCategoryChanged) || len(sent) != 0 || core.ProductCreates() != 5 {
		t.Fatalf("changed accounting: sent %v, err %v, %d create calls", sent, err, core.ProductCreates())
	}
	// Core unavailable: an error, retried by the caller.
	core.Fail("/api/products/v2/browse", http.StatusServiceUnavailable, 1)
	if _, err := products.Register(ctx, c, "k8s", wanted); err == nil {
		t.Fatal("registration with Core down succeeded")
	}
}
