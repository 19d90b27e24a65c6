// Package drives decides which UCloud drives a user may have mounted, and lays out a pod's mounts by drive,
// never by path: the original IM's DriveCanUse rule over drives and projects kept from Core in PostgreSQL,
// and the one mount layout every pod the project builds uses.
package drives

import (
	"slices"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// CanUse is the original IM's rule (DriveCanUse): may actor mount drive, read-only or read-write?
// project is the drive's project (nil when the drive is personal, or when the project is unknown).
//   - unknown drive: no;
//   - project drive: unknown project: no; the project's PI or an ADMIN: yes; not a member: no; the drive's
//     creator: yes; else an ACL entry for the user, or for a group of the project the user is in;
//   - personal drive: a user ACL entry, else only its owner;
//
// an ACL entry counts only with READ for a read-only mount and EDIT for a read-write one. An actor without
// createdBy (a project acting as itself) may use the project's drives only.
func CanUse(actor ucloud.ResourceOwner, drive *ucloud.Drive, project *ucloud.Project, readOnly bool) bool {
	if drive == nil {
		return false
	}
	need := ucloud.PermissionEdit
	if readOnly {
		need = ucloud.PermissionRead
	}
	if p := drive.Owner.Project; p != nil && *p != "" {
		if project == nil || project.ID != *p {
			return false
		}
		if actor.CreatedBy == "" {
			return actor.Project != nil && *actor.Project == project.ID
		}
		i := slices.IndexFunc(project.Status.Members, func(m ucloud.ProjectMember) bool { return m.Username == actor.CreatedBy })
		if i < 0 {
			return false
		}
		if r := project.Status.Members[i].Role; r == ucloud.RolePI || r == ucloud.RoleAdmin {
			return true
		}
		if actor.CreatedBy == drive.Owner.CreatedBy {
			return true
		}
		return aclAllows(drive, project, actor.CreatedBy, need)
	}
	if aclAllows(drive, nil, actor.CreatedBy, need) {
		return true
	}
	return actor.CreatedBy != "" && actor.CreatedBy == drive.Owner.CreatedBy
}

// aclAllows walks the drive's ACL: a user entry for username, or (project drives) a group entry for a
// group of project that username is in, carrying need.
func aclAllows(drive *ucloud.Drive, project *ucloud.Project, username string, need ucloud.Permission) bool {
	if drive.Permissions == nil || username == "" {
		return false
	}
	for _, e := range drive.Permissions.Others {
		if !slices.Contains(e.Permissions, need) {
			continue
		}
		switch e.Entity.Type {
		case ucloud.AclUser:
			if e.Entity.Username == username {
				return true
			}
		case ucloud.AclProjectGroup:
			if project != nil && inGroup(project, e.Entity.Group, username) {
				return true
			}
		}
	}
	return false
}

func inGroup(project *ucloud.Project, group, username string) bool {
	for _, g := range project.Status.Groups {
		if g.ID == group {
			return slices.Contains(g.Status.Members, username)
		}
	}
	return false
}
