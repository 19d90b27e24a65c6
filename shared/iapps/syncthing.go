package iapps

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ucloud-im/knative-im/shared/drives"
	"github.com/ucloud-im/knative-im/shared/isolation"
	"github.com/ucloud-im/knative-im/shared/kube"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// Limits of a Syncthing configuration.
const (
	MaxSyncthingDevices = 100
	MaxSyncthingFolders = 100
	MaxLabelLength      = 64
	// SyncthingPort is Syncthing's sync protocol port, served by the job's syncthing Service.
	SyncthingPort = 22000
)

// SyncthingConfig is the configuration the UCloud web UI sends.
type SyncthingConfig struct {
	Devices []SyncthingDevice `json:"devices"`
	Folders []SyncthingFolder `json:"folders"`
}

// SyncthingDevice is a remote device allowed to sync.
type SyncthingDevice struct {
	DeviceID string `json:"deviceId"`
	Label    string `json:"label"`
}

// SyncthingFolder is a UCloud folder to sync. Path is what the original IM also carried (the in-container
// path); it is derived, so it is accepted and recomputed.
type SyncthingFolder struct {
	ID         string `json:"id"`
	UCloudPath string `json:"ucloudPath"`
	Path       string `json:"path,omitempty"`
}

// deviceID is Syncthing's device id: 8 groups of 7 base32 characters separated by dashes.
var deviceID = regexp.MustCompile(`^[A-Z2-7]{7}(-[A-Z2-7]{7}){7}$`)

// folderID is a Syncthing folder id we accept: short and safe as a file and env name.
var folderID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Syncthing is the file synchronisation application.
type Syncthing struct {
	// Image is the container image (default UCloud's syncthing-go).
	Image string
	// Isolation describes the cluster for the pod's NetworkPolicy.
	Isolation isolation.Env
}

// Name implements Handler.
func (Syncthing) Name() string { return "syncthing" }

// Default implements Handler: no devices, no folders.
func (Syncthing) Default() json.RawMessage { return json.RawMessage(`{"devices":[],"folders":[]}`) }

// Reset implements Handler: back to the default.
func (s Syncthing) Reset(json.RawMessage) json.RawMessage { return s.Default() }

// Validate implements Handler. Device ids are normalised to upper case; a folder without an id gets one
// derived from its position, so the stored configuration is what the container uses.
func (Syncthing) Validate(raw json.RawMessage) (json.RawMessage, error) {
	var c SyncthingConfig
	if err := decodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if c.Devices == nil {
		c.Devices = []SyncthingDevice{}
	}
	if c.Folders == nil {
		c.Folders = []SyncthingFolder{}
	}
	if len(c.Devices) > MaxSyncthingDevices {
		return nil, &ValidationError{Field: "devices", Reason: fmt.Sprintf("has %d entries; at most %d are allowed", len(c.Devices), MaxSyncthingDevices)}
	}
	if len(c.Folders) > MaxSyncthingFolders {
		return nil, &ValidationError{Field: "folders", Reason: fmt.Sprintf("has %d entries; at most %d are allowed", len(c.Folders), MaxSyncthingFolders)}
	}
	seenDevice := map[string]bool{}
	for i := range c.Devices {
		d := &c.Devices[i]
		field := fmt.Sprintf("devices[%d].deviceId", i)
		d.DeviceID = strings.ToUpper(strings.TrimSpace(d.DeviceID))
		if !deviceID.MatchString(d.DeviceID) {
			return nil, &ValidationError{Field: field, Reason: "is not a Syncthing device ID (8 groups of 7 letters A-Z and digits 2-7, separated by dashes)"}
		}
		if seenDevice[d.DeviceID] {
			return nil, &ValidationError{Field: field, Reason: "appears twice"}
		}
		seenDevice[d.DeviceID] = true
		if len(d.Label) > MaxLabelLength || strings.IndexFunc(d.Label, unicode.IsControl) >= 0 {
			return nil, &ValidationError{Field: fmt.Sprintf("devices[%d].label", i), Reason: fmt.Sprintf("must be at most %d printable characters", MaxLabelLength)}
		}
	}
	seenFolder := map[string]bool{}
	seenPath := map[string]bool{}
	for i := range c.Folders {
		f := &c.Folders[i]
		if err := checkUCloudPath(fmt.Sprintf("folders[%d].ucloudPath", i), f.UCloudPath); err != nil {
			return nil, err
		}
		if seenPath[f.UCloudPath] {
			return nil, &ValidationError{Field: fmt.Sprintf("folders[%d].ucloudPath", i), Reason: "appears twice"}
		}
		seenPath[f.UCloudPath] = true
		if f.ID == "" {
			f.ID = fmt.Sprintf("folder-%d", i)
		}
		if !folderID.MatchString(f.ID) {
			return nil, &ValidationError{Field: fmt.Sprintf("folders[%d].id", i), Reason: "must be 1-64 letters, digits, '-' or '_'"}
		}
		if seenFolder[f.ID] {
			return nil, &ValidationError{Field: fmt.Sprintf("folders[%d].id", i), Reason: "appears twice"}
		}
		seenFolder[f.ID] = true
	}
	paths := make([]string, len(c.Folders))
	for i, f := range c.Folders {
		paths[i] = f.UCloudPath
	}
	for i, mp := range mountPaths(paths) {
		c.Folders[i].Path = mp
	}
	return json.Marshal(c)
}

// ShouldRun implements Handler: Syncthing runs only with at least one folder and one device.
func (Syncthing) ShouldRun(raw json.RawMessage, _ time.Time) bool {
	var c SyncthingConfig
	if json.Unmarshal(raw, &c) != nil {
		return false
	}
	return len(c.Devices) > 0 && len(c.Folders) > 0
}

// JobSpec implements Handler.
func (Syncthing) JobSpec(provider string) ucloud.JobSpecification {
	return iappJobSpec("syncthing", provider)
}

// MakeObjects implements Handler: the pod with the folders mounted, a Service for the sync port, and a policy
// that admits the sync port from anywhere.
func (s Syncthing) MakeObjects(job Job, raw json.RawMessage) (Objects, error) {
	var c SyncthingConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return Objects{}, fmt.Errorf("stored syncthing configuration: %w", err)
	}
	image := s.Image
	if image == "" {
		image = "dreg.cloud.sdu.dk/ucloud/syncthing-go:latest"
	}
	pod, cm := basePod(job, raw, image, []string{"/usr/bin/ucloud-sync", ConfigFile}, "400m", "2Gi")
	folders := make([]drives.Folder, len(c.Folders))
	for i, f := range c.Folders {
		// Syncthing writes: always read-write, as in the original.
		folders[i] = drives.Folder{UCloudPath: f.UCloudPath, At: f.Path}
	}
	if err := mountFolders(pod, folders); err != nil {
		return Objects{}, fmt.Errorf("stored syncthing configuration: %w", err)
	}
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "sync", ContainerPort: SyncthingPort, Protocol: corev1.ProtocolTCP}}
	labels := kube.JobLabels(job.ID, 0, job.Key.Project)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: kube.ServiceName(job.ID) + "-syncthing", Namespace: job.Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{kube.LabelJobID: job.ID},
			Ports:    []corev1.ServicePort{{Name: "sync", Port: SyncthingPort, TargetPort: intstr.FromInt32(SyncthingPort), Protocol: corev1.ProtocolTCP}},
		},
	}
	// Fenced in as every job, with the sync port open to every device (they connect from anywhere).
	policy := policy(s.Isolation, job, isolation.Ports{Public: []int32{SyncthingPort}})
	return Objects{Pod: pod, ConfigMap: cm, Services: []*corev1.Service{svc}, Policy: policy}, nil
}

// iappJobSpec is the job Core registers for an integrated application (wire reference: product {app, app,
// provider}, one replica, no parameters or resources).
func iappJobSpec(app, provider string) ucloud.JobSpecification {
	return ucloud.JobSpecification{
		Product:     ucloud.ProductReference{ID: app, Category: app, Provider: provider},
		Application: ucloud.NameAndVersion{Name: app, Version: "latest"},
		Name:        app,
		Replicas:    1,
		Parameters:  map[string]ucloud.AppParameterValue{},
		Resources:   []ucloud.AppParameterValue{},
	}
}

// Folders implements Mounter: Syncthing writes, so every folder needs EDIT.
func (Syncthing) Folders(raw json.RawMessage) ([]drives.Folder, error) {
	var c SyncthingConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("syncthing configuration: %w", err)
	}
	out := make([]drives.Folder, len(c.Folders))
	for i, f := range c.Folders {
		out[i] = drives.Folder{UCloudPath: f.UCloudPath}
	}
	return out, nil
}

// Without implements Mounter: the denied folders are dropped (as the original drops them from the
// runtime configuration); Syncthing keeps running with the rest.
func (Syncthing) Without(raw json.RawMessage, denied []drives.Folder) (json.RawMessage, bool, error) {
	var c SyncthingConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, false, fmt.Errorf("syncthing configuration: %w", err)
	}
	drop := map[string]bool{}
	for _, f := range denied {
		drop[f.UCloudPath] = true
	}
	kept := c.Folders[:0]
	for _, f := range c.Folders {
		if !drop[f.UCloudPath] {
			kept = append(kept, f)
		}
	}
	c.Folders = kept
	out, err := json.Marshal(c)
	return out, true, err
}
