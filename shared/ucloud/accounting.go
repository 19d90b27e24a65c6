package ucloud

import (
	"context"
	"fmt"
	"net/http"
)

// Wallet owner types (accounting.WalletOwnerType).
const (
	WalletOwnerUser    = "user"
	WalletOwnerProject = "project"
)

// WalletOwner is whose allocation is charged: a project when the job runs in one, else the user who
// created it (accounting.WalletOwnerFromIds).
type WalletOwner struct {
	Type      string `json:"type"`
	Username  string `json:"username"`
	ProjectID string `json:"projectId"`
}

// WalletOwnerOf is the owner charged for a resource owned by createdBy in project ("" for a personal
// workspace).
func WalletOwnerOf(createdBy, project string) WalletOwner {
	if project != "" {
		return WalletOwner{Type: WalletOwnerProject, ProjectID: project}
	}
	return WalletOwner{Type: WalletOwnerUser, Username: createdBy}
}

// Reference is the owner as Core keys its wallets: the project id, or the username.
func (o WalletOwner) Reference() string {
	if o.ProjectID != "" {
		return o.ProjectID
	}
	return o.Username
}

// ProductCategoryIDV2 names a product category of a provider.
type ProductCategoryIDV2 struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
}

// ChargeDescription says what a charge is for. Scope groups the reports of one thing (a job): with
// isDeltaCharge false Core replaces that scope's usage by the new total instead of adding to it.
type ChargeDescription struct {
	Scope       *string `json:"scope"`
	Description *string `json:"description"`
}

// ReportUsageRequest is one item of accounting.v2.reportUsage. Usage is in the category's accounting
// unit times its frequency (core-minutes for a Core per PERIODIC_MINUTE category); IsDeltaCharge false
// makes it the total so far, so repeating a report changes nothing.
type ReportUsageRequest struct {
	IsDeltaCharge bool                `json:"isDeltaCharge"`
	Owner         WalletOwner         `json:"owner"`
	CategoryIDV2  ProductCategoryIDV2 `json:"categoryIdV2"`
	Usage         int64               `json:"usage"`
	Description   ChargeDescription   `json:"description"`
}

// ReportUsage sends usage reports (POST /api/accounting/v2/reportUsage). core2 answers one boolean per
// item, false when the owner's wallet is locked (out of resources); it applies the items in order and stops
// at the first it refuses (4xx), the ones before it applied.
func (c *Client) ReportUsage(ctx context.Context, items []ReportUsageRequest) ([]bool, error) {
	var resp BulkResponse[bool]
	if err := c.call(ctx, "accounting.v2.reportUsage", http.MethodPost, "/api/accounting/v2/reportUsage", BulkRequest[ReportUsageRequest]{Items: items}, &resp, true); err != nil {
		return nil, err
	}
	if len(resp.Responses) != len(items) {
		return nil, fmt.Errorf("UCloud/Core accounting.v2.reportUsage: %d answers for %d reports", len(resp.Responses), len(items))
	}
	return resp.Responses, nil
}
