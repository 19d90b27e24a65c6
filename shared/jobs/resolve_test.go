package jobs_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/apps"
)

// fixtureJob is job id running the fixture's application with its parameters, as Core sends it.
func fixtureJob(id, fixture string, replicas int) ucloud.Job {
	job := ucloud.Job{ID: id, Owner: ucloud.ResourceOwner{CreatedBy: "alice#1234"}, Specification: ucloud.JobSpecification{
		Product: ucloud.ProductReference{ID: "u1-standard-1", Category: "u1-standard", Provider: "k8s"}, Replicas: replicas}}
	apps.Load(fixture).Apply(&job)
	return job
}

// rankEnv is the environment the job adds for rank of replicas, after the application's.
func rankEnv(id, rank, replicas string) []corev1.EnvVar {
	return []corev1.EnvVar{{Name: "UCLOUD_JOB_ID", Value: id},
		{Name: "UCLOUD_TASK_COUNT", Value: replicas}, {Name: "VC_JOB_NUM", Value: replicas},
		{Name: "VK_TASK_INDEX", Value: rank}, {Name: "VC_TASK_INDEX", Value: rank},
		{Name: "UCLOUD_RANK", Value: rank}, {Name: "UCLOUD_URL_IS_PUBLIC", Value: "false"}}
}

// TestTheContainerIsWhatTheOriginalRuns: for real applications (built from UCloud's types), the job's
// containers have the image, command, environment, working directory and port UCloud's Kubernetes IM gives
// them; only $ is doubled, so Kubernetes passes the user's text on as typed.
func TestTheContainerIsWhatTheOriginalRuns(t *testing.T) {
	small := jobs.Product{ID: "u1-standard-1", Category: "u1-standard", CPU: 1, MemoryGiB: 4}
	blastEnv := []corev1.EnvVar{{Name: "BLASTDB", Value: "/work/blastdb"}, {Name: "BLAST_HOME", Value: "$$HOME"},
		{Name: "BLAST_USAGE_REPORT", Value: "false"}}
	// The web app's data folder (/51234/...): its drive whole, the folder linked into /work (drives.Layout).
	webMounts := []corev1.VolumeMount{{Name: "ucloud-filesystem", MountPath: "/ucloud/drives/51234", SubPath: "51234"},
		{Name: "ucloud-work", MountPath: "/work"}}
	// BLAST's query file and database, both read-only: their two drives read-only, linked into /work.
	blastMounts := []corev1.VolumeMount{
		{Name: "ucloud-filesystem", ReadOnly: true, MountPath: "/ucloud/drives-ro/51234", SubPath: "51234"},
		{Name: "ucloud-filesystem", ReadOnly: true, MountPath: "/ucloud/drives-ro/51235", SubPath: "51235"},
		{Name: "ucloud-work", MountPath: "/work"}}
	for _, tc := range []struct {
		fixture  string
		replicas int
		want     []corev1.Container // one per rank
	}{
		{"batch", 1, []corev1.Container{{
			Image: "ghcr.io/ucloud-apps/ml-train:1.2.0",
			Command: []string{"python3", "/opt/train.py", "--name", "baseline 'v2' $$(whoami)", "--epochs=12000000",
				"--batch-size", "32", "--lr=0.0005", "--no-augment", "--optimizer", "sgd", "--tags", "nightly,final"},
			WorkingDir: "/work", Env: rankEnv("71", "0", "1"),
		}}},
		{"web", 2, []corev1.Container{{
			Image: "docker.io/rocker/rstudio:4.4.2", Command: []string{"/init", "--data-dir", "/work/data", "--threads", "4"},
			WorkingDir: "/work", Env: append([]corev1.EnvVar{{Name: "DISABLE_AUTH", Value: "true"}}, rankEnv("71", "0", "2")...),
			Ports:        []corev1.ContainerPort{{Name: "web", ContainerPort: 8787, Protocol: corev1.ProtocolTCP}},
			VolumeMounts: webMounts,
		}, {
			Image: "docker.io/rocker/rstudio:4.4.2", Command: []string{"/init", "--data-dir", "/work/data", "--threads", "4"},
			WorkingDir: "/work", Env: append([]corev1.EnvVar{{Name: "DISABLE_AUTH", Value: "true"}}, rankEnv("71", "1", "2")...),
			Ports:        []corev1.ContainerPort{{Name: "web", ContainerPort: 8787, Protocol: corev1.ProtocolTCP}},
			VolumeMounts: webMounts,
		}}},
		{"envflag-on", 1, []corev1.Container{{
			Image:        "docker.io/ncbi/blast:2.16.0",
			Command:      []string{"blastn", "-query", "/work/query.fasta", "-db", "nt", "-html", "-evalue", "1e-05"},
			Env:          append(append([]corev1.EnvVar{}, blastEnv...), rankEnv("71", "0", "1")...),
			VolumeMounts: blastMounts,
		}}},
		{"envflag-off", 1, []corev1.Container{{
			Image:        "docker.io/ncbi/blast:2.16.0",
			Command:      []string{"blastn", "-query", "/work/query.fasta", "-db", "nt", "-evalue", "1e-05"},
			Env:          append(append([]corev1.EnvVar{}, blastEnv...), rankEnv("71", "0", "1")...),
			VolumeMounts: blastMounts,
		}}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			job := fixtureJob("71", tc.fixture, tc.replicas)
			app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
			if err != nil {
				t.Fatal(err)
			}
			objs, err := jobs.MakeObjects(job, small, app, jobs.Settings{Namespace: "jobs"})
			if err != nil {
				t.Fatal(err)
			}
			var got []corev1.Container
			for i, p := range objs.Pods {
				want := &tc.want[i]
				want.Name, want.SecurityContext, want.Resources = "user-job", hardened(), resources("1", "4Gi")
				got = append(got, p.Spec.Containers...)
			}
			if diff := cmp.Diff(tc.want, got, quantities); diff != "" {
				t.Errorf("containers (-want, +got):\n%s", diff)
			}
		})
	}
}

// TestAnApplicationThisProviderCannotRunIsRefused: a 400 in UCloud's shape, naming why, for what cannot
// run here; nothing is built.
func TestAnApplicationThisProviderCannotRunIsRefused(t *testing.T) {
	jinja := fixtureJob("72", "batch", 1)
	jinja.Status.ResolvedApplication.Invocation.Invocation = []ucloud.InvocationParameter{{Type: ucloud.InvocationJinja, Template: "python3 run.py"}}
	noApp := fixtureJob("72", "batch", 1)
	noApp.Status.ResolvedApplication = nil
	noImage := fixtureJob("72", "batch", 1)
	noImage.Status.ResolvedApplication.Invocation.Tool.Tool.Description.Image = ""
	noImage.Status.ResolvedApplication.Invocation.Tool.Tool.Description.Container = ""
	singularity := fixtureJob("72", "batch", 1)
	singularity.Status.ResolvedApplication.Invocation.Tool.Tool.Description.Backend = ucloud.ToolBackendSingularity
	badBool := fixtureJob("72", "batch", 1)
	badBool.Specification.Parameters["augment"] = ucloud.AppParameterValue{Type: "boolean", Value: []byte(`"no"`)}
	elsewhere := fixtureJob("72", "web", 1)
	elsewhere.Specification.Resources = nil
	elsewhere.Specification.Parameters["data"] = ucloud.AppParameterValue{Type: "file", Path: "/9/../51234"}
	for _, tc := range []struct {
		name string
		job  ucloud.Job
		code string
	}{
		{"a virtual machine", fixtureJob("72", "vm", 1), "UNSUPPORTED_TOOL_BACKEND"},
		{"a Singularity tool", singularity, "UNSUPPORTED_TOOL_BACKEND"},
		{"no resolved application", noApp, "NO_APPLICATION"},
		{"no image", noImage, "NO_IMAGE"},
		{"a whole-script Jinja template", jinja, "UNSUPPORTED_INVOCATION"},
		{"a boolean that is not one", badBool, "BAD_PARAMETERS"},
		{"a folder that is not one the job can mount", elsewhere, "BAD_PARAMETERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := jobs.ResolveApplication(tc.job, jobs.WorkFolders(tc.job))
			var fe *fn.Error
			if !errors.As(err, &fe) || fe.Status != 400 || fe.Code != tc.code || fe.Why == "" {
				t.Fatalf("got %+v, %v; want a 400 %s", app, err, tc.code)
			}
		})
	}
}

// TestWorkFoldersPlacesTheJobsFoldersUnderWork: a parameter's path is where the job's own mounts
// (drives.JobLayout) show it: the job's folders at /work/<name> as the original places them, anything below
// them under that, other paths of a mounted drive inside the drive's mount, and nothing else.
func TestWorkFoldersPlacesTheJobsFoldersUnderWork(t *testing.T) {
	job := ucloud.Job{Specification: ucloud.JobSpecification{
		Resources:  []ucloud.AppParameterValue{{Type: "file", Path: "/51234/Home/thesis"}, {Type: "file", Path: "/7"}, {Type: "peer", Hostname: "db"}},
		Parameters: map[string]ucloud.AppParameterValue{"in": {Type: "file", Path: "/51235/data/in.csv"}},
	}}
	m := jobs.WorkFolders(job)
	for in, want := range map[string]string{
		"/51234/Home/thesis":           "/work/thesis",
		"/51234/Home/thesis/notes.txt": "/work/thesis/notes.txt",
		"/51235/data/in.csv":           "/work/in.csv",
		"/51234/Home/thesis/a/b.txt":   "/work/thesis/a/b.txt",
		"/51234/Home":                  "/ucloud/drives/51234/Home",
		"/7":                           "/work/7",
		"/99/not/mounted":              "",
		"/51234/Home/thesis/../../x":   "",
		"relative/thesis":              "",
	} {
		got, err := m(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestAUsersTextCannotReachOtherVariablesOrOverrideTheJobs: the attacker submits a text parameter
// "$(UCLOUD_JOB_ID) $(KUBERNETES_SERVICE_HOST)" to an application that passes it on the command line and in
// an environment variable, and an application defines UCLOUD_JOB_ID itself. Kubernetes expands $(VAR) in
// a container's command and environment, so the text would become other values; it reaches the process
// as typed instead ($ doubled), and the job's own UCLOUD_JOB_ID comes last, so it is the one in effect.
func TestAUsersTextCannotReachOtherVariablesOrOverrideTheJobs(t *testing.T) {
	job := fixtureJob("73", "batch", 1)
	inv := &job.Status.ResolvedApplication.Invocation
	inv.Environment = map[string]ucloud.InvocationParameter{
		"RUN_NAME":      {Type: ucloud.InvocationVar, VariableNames: []string{"run_name"}},
		"UCLOUD_JOB_ID": {Type: ucloud.InvocationWord, Word: "999"},
	}
	attack := "$(UCLOUD_JOB_ID) $(KUBERNETES_SERVICE_HOST)"
	job.Specification.Parameters["run_name"] = ucloud.AppParameterValue{Type: "text", Value: []byte(`"` + attack + `"`)}
	app, err := jobs.ResolveApplication(job, jobs.WorkFolders(job))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := jobs.MakeObjects(job, jobs.Product{CPU: 1, MemoryGiB: 1}, app, jobs.Settings{Namespace: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	c := objs.Pods[0].Spec.Containers[0]
	escaped := "$$(UCLOUD_JOB_ID) $$(KUBERNETES_SERVICE_HOST)"
	if c.Command[3] != escaped {
		t.Errorf("command argument %q, want %q", c.Command[3], escaped)
	}
	wantEnv := append([]corev1.EnvVar{{Name: "RUN_NAME", Value: escaped}, {Name: "UCLOUD_JOB_ID", Value: "999"}}, rankEnv("73", "0", "1")...)
	if diff := cmp.Diff(wantEnv, c.Env); diff != "" {
		t.Errorf("environment (-want, +got):\n%s", diff)
	}
}
