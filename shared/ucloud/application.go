package ucloud

import "encoding/json"

// Application is the resolved application Core sends with every job (status.resolvedApplication): what the
// user picked, as UCloud's orchestrators.Application. Only what a provider running containers reads is
// declared; JSON fields it does not name are ignored.
type Application struct {
	Metadata   ApplicationMetadata   `json:"metadata"`
	Invocation ApplicationInvocation `json:"invocation"`
}

// ApplicationMetadata names the application version.
type ApplicationMetadata struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Title   string `json:"title,omitempty"`
}

// The application types (ApplicationType): a batch job, or one with a web or VNC interface.
const (
	ApplicationTypeBatch = "BATCH"
	ApplicationTypeWeb   = "WEB"
	ApplicationTypeVNC   = "VNC"
)

// The tool backends (ToolBackend): how the tool is run.
const (
	ToolBackendDocker         = "DOCKER"
	ToolBackendSingularity    = "SINGULARITY"
	ToolBackendVirtualMachine = "VIRTUAL_MACHINE"
	ToolBackendNative         = "NATIVE"
	ToolBackendUCX            = "UCX"
)

// ApplicationInvocation is how the application is started (ApplicationInvocationDescription).
type ApplicationInvocation struct {
	Tool            ToolReference                  `json:"tool"`
	Invocation      []InvocationParameter          `json:"invocation"`
	Parameters      []ApplicationParameter         `json:"parameters"`
	ApplicationType string                         `json:"applicationType"`
	Web             *WebDescription                `json:"web,omitempty"`
	VNC             *VNCDescription                `json:"vnc,omitempty"`
	Container       ContainerDescription           `json:"container"`
	Environment     map[string]InvocationParameter `json:"environment,omitempty"`
}

// ToolReference names the tool and, resolved, carries it.
type ToolReference struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Tool    *Tool  `json:"tool,omitempty"`
}

// Tool is the tool an application runs.
type Tool struct {
	Owner       string          `json:"owner,omitempty"`
	Description ToolDescription `json:"description"`
}

// ToolDescription says how the tool runs: its backend and, for containers, its image (Container is the
// older field for the same).
type ToolDescription struct {
	Info      NameAndVersion `json:"info"`
	Backend   string         `json:"backend"`
	Image     string         `json:"image,omitempty"`
	Container string         `json:"container,omitempty"`
}

// WebDescription is the port of a web application's interface.
type WebDescription struct {
	Port int `json:"port"`
}

// VNCDescription is the port and password of a VNC application.
type VNCDescription struct {
	Password string `json:"password,omitempty"`
	Port     int    `json:"port"`
}

// ContainerDescription holds the container options of an application.
type ContainerDescription struct {
	ChangeWorkingDirectory bool `json:"changeWorkingDirectory"`
	RunAsRoot              bool `json:"runAsRoot"`
	RunAsRealUser          bool `json:"runAsRealUser"`
}

// The invocation parameter types (InvocationParameterType).
const (
	InvocationEnv      = "env"
	InvocationWord     = "word"
	InvocationVar      = "var"
	InvocationBoolFlag = "bool_flag"
	InvocationJinja    = "jinja"
)

// InvocationParameter is one part of the command line (or an environment variable's value); which fields
// matter depends on Type, as UCloud sends them all flattened in one object.
type InvocationParameter struct {
	Type string `json:"type"`
	// env: the variable whose value is referenced.
	Variable string `json:"variable,omitempty"`
	// word: a literal argument.
	Word string `json:"word,omitempty"`
	// var: the values of these parameters, with prefixes and suffixes.
	VariableNames             []string `json:"variableNames,omitempty"`
	PrefixGlobal              string   `json:"prefixGlobal,omitempty"`
	SuffixGlobal              string   `json:"suffixGlobal,omitempty"`
	PrefixVariable            string   `json:"prefixVariable,omitempty"`
	SuffixVariable            string   `json:"suffixVariable,omitempty"`
	IsPrefixVariablePartOfArg bool     `json:"isPrefixVariablePartOfArg,omitempty"`
	IsSuffixVariablePartOfArg bool     `json:"isSuffixVariablePartOfArg,omitempty"`
	// bool_flag: Flag when the boolean parameter VariableName is true.
	VariableName string `json:"variableName,omitempty"`
	Flag         string `json:"flag,omitempty"`
	// jinja: a template.
	Template string `json:"template,omitempty"`
}

// The application parameter types (ApplicationParameterType).
const (
	ParameterInputFile      = "input_file"
	ParameterInputDirectory = "input_directory"
	ParameterText           = "text"
	ParameterTextArea       = "textarea"
	ParameterInteger        = "integer"
	ParameterBoolean        = "boolean"
	ParameterEnumeration    = "enumeration"
	ParameterFloatingPoint  = "floating_point"
	ParameterPeer           = "peer"
	ParameterLicenseServer  = "license_server"
	ParameterIngress        = "ingress"
	ParameterNetworkIP      = "network_ip"
	ParameterWorkflow       = "workflow"
	ParameterReadme         = "readme"
	ParameterModuleList     = "modules"
	ParameterPrivateNetwork = "private_network"
)

// The parameter value types (AppParameterValueType) that a parameter's value may have.
const (
	ValueFile          = "file"
	ValueBoolean       = "boolean"
	ValueText          = "text"
	ValueInteger       = "integer"
	ValueFloatingPoint = "floating_point"
	ValuePeer          = "peer"
	ValueLicense       = "license_server"
	ValueNetwork       = "network"
	ValueIngress       = "ingress"
	ValueModuleList    = "modules"
)

// ApplicationParameter is a parameter the application declares (ApplicationParameter).
type ApplicationParameter struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Optional bool   `json:"optional"`
	// DefaultValue is either the value itself or a value object ({"type": ..., "value": ...}).
	DefaultValue json.RawMessage `json:"defaultValue,omitempty"`
	Title        string          `json:"title,omitempty"`
	TrueValue    string          `json:"trueValue,omitempty"`
	FalseValue   string          `json:"falseValue,omitempty"`
	Options      []EnumOption    `json:"options,omitempty"`
}

// EnumOption is one choice of an enumeration: the name the user sees and the value passed on.
type EnumOption struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
