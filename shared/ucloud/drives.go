package ucloud

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Permission is a right on a resource (UCloud's Permission).
type Permission string

// The permissions the drive rule looks at.
const (
	PermissionRead Permission = "READ"
	PermissionEdit Permission = "EDIT"
)

// The ACL entity types.
const (
	AclUser         = "user"
	AclProjectGroup = "project_group"
)

// AclEntity is who an ACL entry is for: a user (Username) or a project group (ProjectID, Group).
type AclEntity struct {
	Type      string `json:"type"`
	ProjectID string `json:"projectId,omitempty"`
	Group     string `json:"group,omitempty"`
	Username  string `json:"username,omitempty"`
}

// ResourceAclEntry is one ACL entry.
type ResourceAclEntry struct {
	Entity      AclEntity    `json:"entity"`
	Permissions []Permission `json:"permissions"`
}

// ResourcePermissions are the caller's own rights and, with includeOthers, every ACL entry.
type ResourcePermissions struct {
	Myself []Permission       `json:"myself"`
	Others []ResourceAclEntry `json:"others,omitempty"`
}

// DriveSpecification is a drive's title and product.
type DriveSpecification struct {
	Title   string           `json:"title"`
	Product ProductReference `json:"product"`
}

// Drive is a UCloud drive (a file collection) as files.collections.control.retrieve answers it.
type Drive struct {
	ID                  string               `json:"id"`
	CreatedAt           int64                `json:"createdAt"`
	Owner               ResourceOwner        `json:"owner"`
	ProviderGeneratedID string               `json:"providerGeneratedId,omitempty"`
	Permissions         *ResourcePermissions `json:"permissions,omitempty"`
	Specification       DriveSpecification   `json:"specification"`
}

// Project roles.
const (
	RolePI    = "PI"
	RoleAdmin = "ADMIN"
	RoleUser  = "USER"
)

// ProjectMember is a member and their role.
type ProjectMember struct {
	Username string `json:"username"`
	Role     string `json:"role"`
}

// ProjectGroup is a group of a project and its members (usernames).
type ProjectGroup struct {
	ID            string `json:"id"`
	Specification struct {
		Project string `json:"project"`
		Title   string `json:"title"`
	} `json:"specification"`
	Status struct {
		Members []string `json:"members"`
	} `json:"status"`
}

// Project is a project with its members and groups, as Core's provider notifications carry it.
type Project struct {
	ID            string `json:"id"`
	Specification struct {
		Title string `json:"title"`
	} `json:"specification"`
	Status struct {
		Members []ProjectMember `json:"members"`
		Groups  []ProjectGroup  `json:"groups"`
	} `json:"status"`
}

// RetrieveDrive reads one drive with its whole ACL (files.collections.control.retrieve with includeOthers,
// as the original IM asks). A drive Core does not know (404) is nil, nil.
func (c *Client) RetrieveDrive(ctx context.Context, id string) (*Drive, error) {
	q := url.Values{"id": {id}, "includeOthers": {"true"}}
	var d Drive
	err := c.call(ctx, "files.collections.control.retrieve", http.MethodGet, "/api/files/collections/control/retrieve?"+q.Encode(), nil, &d, true)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}
