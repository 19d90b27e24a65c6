// Package usage says what a job costs: the charge job-create writes on a job's pods (whose wallet, which
// product category, how many of its accounting units per period) and the total for a running time, in the
// unit Core's accounting expects, computed as the original IM does (replicas x the product's count of the
// category's unit x running time / the category's frequency, truncated).
package usage

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// The pod annotations of a charge. job-create sets them from the job Core sent and the catalogue; a job
// pod cannot change them (it has no token for the apiserver), and pods without them (integrated
// applications: free products) are never charged.
const (
	AnnotationOwnerType    = "ucloud.dk/charge-owner-type"
	AnnotationOwner        = "ucloud.dk/charge-owner"
	AnnotationCategory     = "ucloud.dk/charge-category"
	AnnotationProvider     = "ucloud.dk/charge-provider"
	AnnotationUnits        = "ucloud.dk/charge-units"
	AnnotationFrequency    = "ucloud.dk/charge-frequency"
	annotationOwnerProject = ucloud.WalletOwnerProject
)

// Charge is how a job is charged: Units of the category's accounting unit (the product's price times the
// job's replicas) per Frequency period.
type Charge struct {
	Owner     ucloud.WalletOwner
	Category  ucloud.ProductCategoryIDV2
	Units     int64
	Frequency string
}

// Period is the length of one accounting period of frequency.
func Period(frequency string) (time.Duration, error) {
	switch frequency {
	case ucloud.FrequencyPeriodicMinute:
		return time.Minute, nil
	case ucloud.FrequencyPeriodicHour:
		return time.Hour, nil
	case ucloud.FrequencyPeriodicDay:
		return 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("accounting frequency %q is not PERIODIC_MINUTE, PERIODIC_HOUR or PERIODIC_DAY", frequency)
}

// Total is what running for ran costs, in the category's unit: Units x ran / period, truncated as the
// original IM truncates (int64 of the product). Computed in milliseconds with integers, so no rounding
// drifts between reports.
func (c Charge) Total(ran time.Duration) (int64, error) {
	period, err := Period(c.Frequency)
	if err != nil {
		return 0, err
	}
	if ran <= 0 || c.Units <= 0 {
		return 0, nil
	}
	// Units is at most a few thousand and ran a few years in ms (~1e11): the product fits in int64.
	return c.Units * ran.Milliseconds() / period.Milliseconds(), nil
}

// Annotate writes the charge on a pod's annotations.
func (c Charge) Annotate(annotations map[string]string) {
	annotations[AnnotationOwnerType] = c.Owner.Type
	annotations[AnnotationOwner] = c.Owner.Reference()
	annotations[AnnotationCategory] = c.Category.Name
	annotations[AnnotationProvider] = c.Category.Provider
	annotations[AnnotationUnits] = strconv.FormatInt(c.Units, 10)
	annotations[AnnotationFrequency] = c.Frequency
}

// FromAnnotations reads the charge of a pod; false when it has none (not a charged job). A charge that is
// there but malformed is an error.
func FromAnnotations(a map[string]string) (Charge, bool, error) {
	kind, ok := a[AnnotationOwnerType]
	if !ok {
		return Charge{}, false, nil
	}
	var c Charge
	switch ref := a[AnnotationOwner]; kind {
	case ucloud.WalletOwnerUser:
		c.Owner = ucloud.WalletOwner{Type: kind, Username: ref}
	case annotationOwnerProject:
		c.Owner = ucloud.WalletOwner{Type: kind, ProjectID: ref}
	default:
		return Charge{}, true, fmt.Errorf("charge owner type %q is not user or project", kind)
	}
	units, err := strconv.ParseInt(a[AnnotationUnits], 10, 64)
	if err != nil || units < 0 {
		return Charge{}, true, fmt.Errorf("charge units %q are not a count", a[AnnotationUnits])
	}
	c.Category = ucloud.ProductCategoryIDV2{Name: a[AnnotationCategory], Provider: a[AnnotationProvider]}
	c.Units, c.Frequency = units, a[AnnotationFrequency]
	if c.Owner.Reference() == "" || c.Category.Name == "" || c.Category.Provider == "" {
		return Charge{}, true, fmt.Errorf("charge %+v lacks its owner, category or provider", c)
	}
	if _, err := Period(c.Frequency); err != nil {
		return Charge{}, true, err
	}
	return c, true, nil
}

// Scope is the scope of a job's reports, as the original IM names it: Core keeps one total per owner and
// scope, which an absolute report replaces.
func Scope(jobID string) string { return "job-" + jobID }
