package jobs

import (
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/drives"
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

// WorkFolders maps UCloud paths to where a job's container sees them through the mounts Build makes
// (drives.JobLayout of the same job): a folder or file the job names at /work/<its name>, anything below it
// under that, and any other path of a mounted drive inside that drive's own mount. A path of a drive the job
// does not mount is an error, so a parameter can never name a place the container cannot see.
func WorkFolders(job ucloud.Job) invocation.PathMapper {
	layout, err := drives.JobLayout(job)
	return func(ucloudPath string) (string, error) {
		if err != nil {
			return "", err
		}
		if where, ok := layout.ContainerPath(ucloudPath); ok {
			return where, nil
		}
		return "", fmt.Errorf("%s is not among the job's folders", ucloudPath)
	}
}
