package jobs

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/invocation"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Application is how a job's application runs: what Core resolved for the job (its tool's image, its
// invocation with the user's parameters, its web port), as the process should see it; Build makes it
// safe for Kubernetes.
type Application struct {
	Image   string
	Command []string
	// Env is the application's own environment; Build adds the job's (UCLOUD_JOB_ID, UCLOUD_RANK, ...).
	Env     []corev1.EnvVar
	WebPort int
	// WorkingDir is where the process starts ("": the image's own).
	WorkingDir string
}

// containerWorkDir is where UCloud's Kubernetes IM mounts a job's folders, and where an application that
// asks to change its working directory starts.
const containerWorkDir = "/work"

// defaultWebPort is the port of a web application that names none (UCloud's WebDescription default).
const defaultWebPort = 80

// ResolveApplication is what the job runs: the image of the tool Core resolved, the invocation with the
// job's parameter values (file and directory parameters through folders), and its web port. An
// application this provider cannot run is a 400 in UCloud's shape, so Core tells the user and creates
// nothing.
func ResolveApplication(job ucloud.Job, folders invocation.PathMapper) (Application, error) {
	app := job.Status.ResolvedApplication
	if app == nil {
		return Application{}, fn.Errorf(http.StatusBadRequest, "NO_APPLICATION",
			"Job %s carries no resolved application, so this provider cannot tell what to run.", job.ID)
	}
	name := app.Metadata.Name + " " + app.Metadata.Version
	inv := app.Invocation
	if inv.Tool.Tool == nil {
		return Application{}, fn.Errorf(http.StatusBadRequest, "NO_TOOL", "%s has no resolved tool, so this provider cannot tell what to run.", name)
	}
	tool := inv.Tool.Tool.Description
	// Only what retrieveProducts claims (docker): UCloud's Kubernetes IM sends virtual machines to
	// KubeVirt, and its container path for Singularity and native tools needs the module and image
	// handling this provider does not have.
	if tool.Backend != ucloud.ToolBackendDocker {
		return Application{}, fn.Errorf(http.StatusBadRequest, "UNSUPPORTED_TOOL_BACKEND",
			"%s runs on the %s backend; this provider runs container (DOCKER) applications only.", name, tool.Backend)
	}
	image := tool.Image
	if image == "" {
		image = tool.Container
	}
	if image == "" {
		return Application{}, fn.Errorf(http.StatusBadRequest, "NO_IMAGE", "%s names no container image.", name)
	}
	cmd, err := invocation.Build(inv, job.Specification.Parameters, folders)
	if err != nil {
		code := "BAD_PARAMETERS"
		if errors.Is(err, invocation.ErrUnsupported) {
			code = "UNSUPPORTED_INVOCATION"
		}
		return Application{}, fn.Wrap(err, http.StatusBadRequest, code, fmt.Sprintf("%s cannot be started with these parameters: %s.", name, err))
	}
	out := Application{Image: image, Command: cmd.Args}
	for _, e := range cmd.Env {
		out.Env = append(out.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if f := job.Specification.OpenedFile; f != "" {
		// As the original: a file it cannot place is /dev/null rather than a failed job.
		where, err := folders(f)
		if err != nil {
			where = "/dev/null"
		}
		out.Env = append(out.Env, corev1.EnvVar{Name: "UCLOUD_OPEN_WITH_FILE", Value: where})
	}
	out.WebPort = webPort(job)
	if inv.Container.ChangeWorkingDirectory {
		out.WorkingDir = containerWorkDir
	}
	return out, nil
}

// webPort is the port of the job's web interface, 0 when its application has none.
func webPort(job ucloud.Job) int {
	app := job.Status.ResolvedApplication
	if app == nil || app.Invocation.ApplicationType != ucloud.ApplicationTypeWeb {
		return 0
	}
	if app.Invocation.Web != nil && app.Invocation.Web.Port > 0 {
		return app.Invocation.Web.Port
	}
	return defaultWebPort
}

// WorkFolders maps UCloud paths to where a job's container sees them, by the original's rule: each
// folder or file the job names (a file resource or a file parameter) at /work/<its name>, and a path
// directly inside one of them below that. A drive's root (/<drive id>) is mounted under the drive's
// title, which the job does not carry, so it is not mapped here.
//
// TODO(drives): the mounts themselves are shared/drives'; at merge this mapping comes from there.
func WorkFolders(job ucloud.Job) invocation.PathMapper {
	mounted := map[string]string{}
	add := func(v ucloud.AppParameterValue) {
		if v.Type != ucloud.ValueFile || !strings.HasPrefix(v.Path, "/") {
			return
		}
		clean := path.Clean(v.Path)
		if strings.Count(clean, "/") < 2 {
			return
		}
		mounted[clean] = path.Join(containerWorkDir, path.Base(clean))
	}
	for _, v := range job.Specification.Resources {
		add(v)
	}
	for _, v := range job.Specification.Parameters {
		add(v)
	}
	return func(ucloudPath string) (string, error) {
		clean := path.Clean(ucloudPath)
		if strings.HasPrefix(ucloudPath, "/") {
			if where, ok := mounted[clean]; ok {
				return where, nil
			}
			if where, ok := mounted[path.Dir(clean)]; ok {
				return path.Join(where, path.Base(clean)), nil
			}
		}
		return "", fmt.Errorf("%s is not among the job's folders", ucloudPath)
	}
}
