// Package ucloud holds UCloud's wire types (as UCloud/Core sends and expects them: camelCase JSON,
// timestamps in milliseconds since the Unix epoch) and the client for the IM -> Core control calls.
package ucloud

import "encoding/json"

// BulkRequest wraps the items of a bulk call: {"items": [...]}.
type BulkRequest[T any] struct {
	Items []T `json:"items"`
}

// BulkResponse answers a bulk call with one response per item, in order: {"responses": [...]}.
type BulkResponse[T any] struct {
	Responses []T `json:"responses"`
}

// ResourceOwner is who owns a resource; Project is nil for a personal workspace.
type ResourceOwner struct {
	CreatedBy string  `json:"createdBy"`
	Project   *string `json:"project"`
}

// ProductReference names a product of a provider.
type ProductReference struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Provider string `json:"provider"`
}

// NameAndVersion names an application.
type NameAndVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// SimpleDuration is a time allocation.
type SimpleDuration struct {
	Hours   int `json:"hours"`
	Minutes int `json:"minutes"`
	Seconds int `json:"seconds"`
}

// Milliseconds is the duration in milliseconds.
func (d SimpleDuration) Milliseconds() int64 {
	return (int64(d.Hours)*3600 + int64(d.Minutes)*60 + int64(d.Seconds)) * 1000
}

// AppParameterValue is one application parameter or resource. Which fields are set depends on Type: Value
// for text/integer/floating_point/boolean, Path (and ReadOnly) for file, ID for ingress/network/license,
// Hostname and JobID for peer.
type AppParameterValue struct {
	Type     string          `json:"type"`
	Value    json.RawMessage `json:"value,omitempty"`
	Path     string          `json:"path,omitempty"`
	ReadOnly *bool           `json:"readOnly,omitempty"`
	ID       string          `json:"id,omitempty"`
	Hostname string          `json:"hostname,omitempty"`
	JobID    string          `json:"jobId,omitempty"`
}

// JobSpecification is what the user asked for.
type JobSpecification struct {
	Product           ProductReference             `json:"product"`
	Application       NameAndVersion               `json:"application"`
	Name              string                       `json:"name,omitempty"`
	Replicas          int                          `json:"replicas"`
	AllowDuplicateJob bool                         `json:"allowDuplicateJob,omitempty"`
	Parameters        map[string]AppParameterValue `json:"parameters"`
	Resources         []AppParameterValue          `json:"resources"`
	TimeAllocation    *SimpleDuration              `json:"timeAllocation,omitempty"`
	OpenedFile        string                       `json:"openedFile,omitempty"`
	RestartOnExit     bool                         `json:"restartOnExit,omitempty"`
	SSHEnabled        bool                         `json:"sshEnabled,omitempty"`
}

// JobState is the state of a job as Core knows it.
type JobState string

// The job states. SUCCESS, FAILURE and EXPIRED are final; SUSPENDED is not.
const (
	StateInQueue   JobState = "IN_QUEUE"
	StateRunning   JobState = "RUNNING"
	StateSuccess   JobState = "SUCCESS"
	StateFailure   JobState = "FAILURE"
	StateExpired   JobState = "EXPIRED"
	StateSuspended JobState = "SUSPENDED"
)

// Final reports whether the job can change state no more.
func (s JobState) Final() bool {
	return s == StateSuccess || s == StateFailure || s == StateExpired
}

// Valid reports whether s is one of the six states.
func (s JobState) Valid() bool {
	switch s {
	case StateInQueue, StateRunning, StateSuccess, StateFailure, StateExpired, StateSuspended:
		return true
	}
	return false
}

// JobStatus is Core's view of the job's progress.
type JobStatus struct {
	State        JobState `json:"state"`
	StartedAt    *int64   `json:"startedAt,omitempty"`
	ExpiresAt    *int64   `json:"expiresAt,omitempty"`
	AllowRestart bool     `json:"allowRestart"`
	// ResolvedApplication is the application the job runs, as Core resolved it (always sent with a job).
	ResolvedApplication *Application `json:"resolvedApplication,omitempty"`
}

// JobOutput says where the job's output went.
type JobOutput struct {
	OutputFolder *string `json:"outputFolder"`
}

// Job is a job as Core sends it to the provider. Fields the IM does not use (permissions, ...) are kept raw
// so nothing is lost when a Job is passed on.
type Job struct {
	ID            string           `json:"id"`
	CreatedAt     int64            `json:"createdAt"`
	Owner         ResourceOwner    `json:"owner"`
	Specification JobSpecification `json:"specification"`
	Status        JobStatus        `json:"status"`
	Updates       []JobUpdate      `json:"updates"`
	Output        JobOutput        `json:"output"`
	Permissions   json.RawMessage  `json:"permissions,omitempty"`
	// ProviderGeneratedID is the id the provider gave a job it registered itself.
	ProviderGeneratedID string `json:"providerGeneratedId,omitempty"`
}

// PageV2 is one page of a browse call; Next, when set, asks for the following page.
type PageV2[T any] struct {
	ItemsPerPage int     `json:"itemsPerPage"`
	Items        []T     `json:"items"`
	Next         *string `json:"next"`
}

// JobUpdate is one change of a job reported to Core. Everything but Timestamp is optional.
type JobUpdate struct {
	State                  *JobState `json:"state,omitempty"`
	Status                 *string   `json:"status,omitempty"`
	OutputFolder           *string   `json:"outputFolder,omitempty"`
	ExpectedState          *JobState `json:"expectedState,omitempty"`
	ExpectedDifferentState *bool     `json:"expectedDifferentState,omitempty"`
	NewTimeAllocation      *int64    `json:"newTimeAllocation,omitempty"`
	Timestamp              int64     `json:"timestamp"`
}

// ResourceUpdateAndID addresses an update to one job.
type ResourceUpdateAndID[U any] struct {
	ID     string `json:"id"`
	Update U      `json:"update"`
}

// ProviderRegisteredResource registers a job the provider made itself (integrated applications).
type ProviderRegisteredResource[S any] struct {
	Spec                S       `json:"spec"`
	ProviderGeneratedID *string `json:"providerGeneratedId"`
	CreatedBy           *string `json:"createdBy"`
	Project             *string `json:"project"`
}

// FindByStringID carries an id.
type FindByStringID struct {
	ID string `json:"id"`
}

// RefreshRequest and AccessToken are the provider token exchange.
type RefreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

// AccessToken is Core's answer to a refresh.
type AccessToken struct {
	AccessToken string `json:"accessToken"`
}

// OpenSession answers interactiveSession.
type OpenSession struct {
	Type             string `json:"type"`
	JobID            string `json:"jobId"`
	Rank             int    `json:"rank"`
	DomainOverride   string `json:"domainOverride,omitempty"`
	RedirectClientTo string `json:"redirectClientTo,omitempty"`
	// SessionIdentifier is a shell session's one-time identifier (type "shell").
	SessionIdentifier string `json:"sessionIdentifier,omitempty"`
}

// Error is UCloud's error body. StatusCode repeats the HTTP status and DetailedCode is usually 0, as the
// original IM sends them.
type Error struct {
	Why          string `json:"why"`
	ErrorCode    string `json:"errorCode,omitempty"`
	StatusCode   int    `json:"statusCode,omitempty"`
	DetailedCode int    `json:"detailedCode"`
}
