package ucloud

import (
	"fmt"

	"github.com/ucloud-im/knative-im/shared/metrics"
)

// CoreEnv is how a function calls UCloud/Core. Both variables are optional here: each function decides
// whether it needs Core (RequireCore) or can run without it.
type CoreEnv struct {
	CoreURL          string `envconfig:"UCLOUD_CORE_URL"`
	RefreshTokenFile string `envconfig:"UCLOUD_REFRESH_TOKEN_FILE"`
}

// CoreConfigured says whether both variables are set.
func (e CoreEnv) CoreConfigured() bool { return e.CoreURL != "" && e.RefreshTokenFile != "" }

// RequireCore refuses a configuration without Core, naming the first variable missing, as a required
// envconfig variable would.
func (e CoreEnv) RequireCore() error {
	switch {
	case e.CoreURL == "":
		return fmt.Errorf("configuration: UCLOUD_CORE_URL is required but not set")
	case e.RefreshTokenFile == "":
		return fmt.Errorf("configuration: UCLOUD_REFRESH_TOKEN_FILE is required but not set")
	}
	return nil
}

// CoreClient is the Core client every function builds: the refresh token read from its file.
func (e CoreEnv) CoreClient() (*Client, error) {
	return NewClient(ClientOptions{BaseURL: e.CoreURL, RefreshToken: RefreshTokenFile(e.RefreshTokenFile)})
}

// CoreClientMeasured is CoreClient recording its calls in m.
func (e CoreEnv) CoreClientMeasured(m *metrics.Core) (*Client, error) {
	return NewClient(ClientOptions{BaseURL: e.CoreURL, RefreshToken: RefreshTokenFile(e.RefreshTokenFile), Metrics: m})
}
