package jobs

import (
	"fmt"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
)

// Charge is how the job is charged: its owner's wallet, its product's category at this provider, and the
// product's price (its count of the category's unit, as registered with Core) times the replicas, per the
// category's frequency. The monitor reports the usage from it (see shared/usage).
func (c *Catalog) Charge(job ucloud.Job, provider string) (usage.Charge, error) {
	all, err := c.CoreProducts(provider)
	if err != nil {
		return usage.Charge{}, err
	}
	ref := job.Specification.Product
	for _, p := range all {
		if p.Name != ref.ID || p.Category.Name != ref.Category {
			continue
		}
		project := ""
		if job.Owner.Project != nil {
			project = *job.Owner.Project
		}
		return usage.Charge{
			Owner:     ucloud.WalletOwnerOf(job.Owner.CreatedBy, project),
			Category:  ucloud.ProductCategoryIDV2{Name: p.Category.Name, Provider: provider},
			Units:     p.Price * int64(max(job.Specification.Replicas, 1)),
			Frequency: p.Category.AccountingFrequency,
		}, nil
	}
	return usage.Charge{}, fmt.Errorf("no product %s/%s in the catalogue", ref.Category, ref.ID)
}
