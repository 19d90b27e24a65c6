package usage_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/shared/usage"
)

// The total is units x running time / the frequency's period, truncated as the original truncates.
func TestTotal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		units     int64
		frequency string
		ran       time.Duration
		want      int64
	}{
		{"8 cores for 90 s, per minute", 8, ucloud.FrequencyPeriodicMinute, 90 * time.Second, 12},
		{"1 core for 59.999 s is not yet a core-minute", 1, ucloud.FrequencyPeriodicMinute, 59999 * time.Millisecond, 0},
		{"1 core for 1 min", 1, ucloud.FrequencyPeriodicMinute, time.Minute, 1},
		{"2 GPUs for 3 h, per hour", 2, ucloud.FrequencyPeriodicHour, 3 * time.Hour, 6},
		{"64 GB for 36 h, per day", 64, ucloud.FrequencyPeriodicDay, 36 * time.Hour, 96},
		{"a year of 1,000 cores per minute fits", 1000, ucloud.FrequencyPeriodicMinute, 365 * 24 * time.Hour, 525_600_000},
		{"never ran", 8, ucloud.FrequencyPeriodicMinute, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := usage.Charge{Units: tc.units, Frequency: tc.frequency}.Total(tc.ran)
			if err != nil || got != tc.want {
				t.Fatalf("Total = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if _, err := (usage.Charge{Units: 1, Frequency: "ONCE"}).Total(time.Minute); err == nil {
		t.Fatal("an unknown frequency gave a total")
	}
}

// A charge written on a pod reads back whole; a pod without one is not charged; a malformed one is an error.
func TestChargeAnnotations(t *testing.T) {
	for _, c := range []usage.Charge{
		{Owner: ucloud.WalletOwnerOf("alice#1", ""), Category: ucloud.ProductCategoryIDV2{Name: "u1-standard", Provider: "k8s"}, Units: 8, Frequency: ucloud.FrequencyPeriodicMinute},
		{Owner: ucloud.WalletOwnerOf("bob#2", "6b1d-project"), Category: ucloud.ProductCategoryIDV2{Name: "u1-gpu", Provider: "k8s"}, Units: 2, Frequency: ucloud.FrequencyPeriodicHour},
	} {
		a := map[string]string{}
		c.Annotate(a)
		got, ok, err := usage.FromAnnotations(a)
		if err != nil || !ok {
			t.Fatalf("FromAnnotations = %v, %v", ok, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Fatalf("read back (-written +read):\n%s", diff)
		}
	}
	if _, ok, err := usage.FromAnnotations(map[string]string{"ucloud.dk/replicas": "1"}); ok || err != nil {
		t.Fatalf("a pod without a charge: %v, %v", ok, err)
	}
	good := map[string]string{}
	usage.Charge{Owner: ucloud.WalletOwnerOf("alice#1", ""), Category: ucloud.ProductCategoryIDV2{Name: "c", Provider: "k8s"}, Units: 1, Frequency: ucloud.FrequencyPeriodicMinute}.Annotate(good)
	for key, bad := range map[string]string{
		usage.AnnotationOwnerType: "wallet", usage.AnnotationUnits: "-3", usage.AnnotationFrequency: "ONCE",
		usage.AnnotationCategory: "", usage.AnnotationOwner: "",
	} {
		a := map[string]string{}
		for k, v := range good {
			a[k] = v
		}
		a[key] = bad
		if _, ok, err := usage.FromAnnotations(a); !ok || err == nil {
			t.Errorf("%s=%q: %v, %v; want an error", key, bad, ok, err)
		}
	}
}
