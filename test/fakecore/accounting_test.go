package fakecore_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/products"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

// accountingCore is a fake Core that knows alice's job, a job of project p-1, a charged category and a free
// one, and a client of it.
func accountingCore(t *testing.T) (*fakecore.Core, *ucloud.Client) {
	t.Helper()
	core := fakecore.Start(t)
	project := "p-1"
	core.PutJob(ucloud.Job{ID: "1", Owner: ucloud.ResourceOwner{CreatedBy: "alice#1"}})
	core.PutJob(ucloud.Job{ID: "2", Owner: ucloud.ResourceOwner{CreatedBy: "bob#2", Project: &project}})
	client, err := core.Client(ucloud.ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	wanted, err := products.Compute("k8s", []products.Machine{{ID: "m-4", Category: "m", CPU: 4, MemoryGiB: 8}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wanted = append(wanted, products.IntegratedApp("k8s", "syncthing"))
	if err := client.CreateProducts(context.Background(), wanted); err != nil {
		t.Fatal(err)
	}
	return core, client
}

func report(owner ucloud.WalletOwner, category string, usage int64, delta bool, scope string) ucloud.ReportUsageRequest {
	r := ucloud.ReportUsageRequest{IsDeltaCharge: delta, Owner: owner, CategoryIDV2: ucloud.ProductCategoryIDV2{Name: category, Provider: "k8s"}, Usage: usage}
	if scope != "" {
		r.Description.Scope = &scope
	}
	return r
}

// Usage reports are refused as core2 refuses them (403, the call fails at the first bad item and the
// items before it stay applied), and applied as core2 applies them: an absolute report replaces its
// scope's usage, a delta adds, a free category is not charged.
func TestReportUsageAsCore2(t *testing.T) {
	alice := ucloud.WalletOwnerOf("alice#1", "")
	project := ucloud.WalletOwnerOf("bob#2", "p-1")
	m := ucloud.ProductCategoryIDV2{Name: "m", Provider: "k8s"}
	for _, tc := range []struct {
		name    string
		items   []ucloud.ReportUsageRequest
		status  int
		why     string
		scope   map[string]int64 // owner/scope -> usage after the call
		wallets map[string]int64 // owner -> usage of category m
	}{
		{name: "absolute reports replace the scope's total", items: []ucloud.ReportUsageRequest{
			report(alice, "m", 10, false, "job-1"), report(alice, "m", 25, false, "job-1"), report(alice, "m", 25, false, "job-1")},
			scope: map[string]int64{"alice#1/job-1": 25}, wallets: map[string]int64{"alice#1": 25}},
		{name: "two scopes of one wallet add up", items: []ucloud.ReportUsageRequest{
			report(alice, "m", 10, false, "job-1"), report(alice, "m", 7, false, "job-3")},
			scope: map[string]int64{"alice#1/job-1": 10, "alice#1/job-3": 7}, wallets: map[string]int64{"alice#1": 17}},
		{name: "a delta adds", items: []ucloud.ReportUsageRequest{
			report(project, "m", 10, false, "job-2"), report(project, "m", 5, true, "job-2")},
			scope: map[string]int64{"p-1/job-2": 15}, wallets: map[string]int64{"p-1": 15}},
		{name: "a free category is not charged", items: []ucloud.ReportUsageRequest{report(alice, "syncthing", 99, false, "job-1")},
			scope: map[string]int64{"alice#1/job-1": 0}, wallets: map[string]int64{"alice#1": 0}},
		{name: "unknown category, the item before it applied", items: []ucloud.ReportUsageRequest{
			report(alice, "m", 4, false, "job-1"), report(alice, "gpu", 1, false, "job-1")},
			status: 403, why: "category does not exist", scope: map[string]int64{"alice#1/job-1": 4}, wallets: map[string]int64{"alice#1": 4}},
		{name: "another provider's category", items: []ucloud.ReportUsageRequest{{Owner: alice, CategoryIDV2: ucloud.ProductCategoryIDV2{Name: "m", Provider: "other"}, Usage: 1}},
			status: 403, why: "cannot report usage for this product", wallets: map[string]int64{"alice#1": 0}},
		{name: "an owner Core does not know", items: []ucloud.ReportUsageRequest{report(ucloud.WalletOwnerOf("mallory#9", ""), "m", 1, false, "job-1")},
			status: 403, why: "user/project does not exist", wallets: map[string]int64{"mallory#9": 0}},
		{name: "a user named as a project", items: []ucloud.ReportUsageRequest{report(ucloud.WalletOwner{Type: ucloud.WalletOwnerProject, ProjectID: "alice#1"}, "m", 1, false, "")},
			status: 403, why: "user/project does not exist", wallets: map[string]int64{"alice#1": 0}},
		{name: "negative absolute usage", items: []ucloud.ReportUsageRequest{report(alice, "m", -1, false, "job-1")},
			status: 403, why: "cannot be negative", wallets: map[string]int64{"alice#1": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, client := accountingCore(t)
			answers, err := client.ReportUsage(context.Background(), tc.items)
			var se *ucloud.StatusError
			switch {
			case tc.status == 0 && (err != nil || len(answers) != len(tc.items)):
				t.Fatalf("ReportUsage = %v, %v; want %d answers", answers, err, len(tc.items))
			case tc.status != 0 && (!errors.As(err, &se) || se.Status != tc.status || !strings.Contains(se.Body.Why, tc.why)):
				t.Fatalf("ReportUsage = %v, want %d %q", err, tc.status, tc.why)
			}
			for key, want := range tc.scope {
				owner, scope, _ := strings.Cut(key, "/")
				if got := core.ScopeUsage(owner, scope); got != want {
					t.Errorf("scope %s: %d, want %d", key, got, want)
				}
			}
			for owner, want := range tc.wallets {
				if got := core.WalletUsage(owner, m); got != want {
					t.Errorf("wallet of %s: %d, want %d", owner, got, want)
				}
			}
		})
	}
}

// Without a provider's access token the call is refused and nothing is charged.
func TestReportUsageNeedsTheProvidersToken(t *testing.T) {
	core, _ := accountingCore(t)
	body := `{"items":[{"isDeltaCharge":false,"owner":{"type":"user","username":"alice#1","projectId":""},"categoryIdV2":{"name":"m","provider":"k8s"},"usage":5,"description":{"scope":"job-1","description":null}}]}`
	for _, auth := range []string{"", "Bearer " + core.Token()} { // none, and Core's own token to providers
		req, _ := http.NewRequest(http.MethodPost, core.URL()+"/api/accounting/v2/reportUsage", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: %d, want 401", auth, resp.StatusCode)
		}
	}
	if n := len(core.UsageReports()); n != 0 {
		t.Fatalf("%d reports applied without a provider token", n)
	}
}
