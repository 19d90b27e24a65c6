package ucloud_test

import (
	"testing"

	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// status-report needs Core; the functions that may run without it ask CoreConfigured. Both variables or
// neither: one alone is not a Core configuration.
func TestCoreEnvRequireCore(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        ucloud.CoreEnv
		configured bool
		err        string
	}{
		{"both", ucloud.CoreEnv{CoreURL: "http://core", RefreshTokenFile: "/t"}, true, ""},
		{"neither", ucloud.CoreEnv{}, false, "configuration: UCLOUD_CORE_URL is required but not set"},
		{"no token file", ucloud.CoreEnv{CoreURL: "http://core"}, false, "configuration: UCLOUD_REFRESH_TOKEN_FILE is required but not set"},
		{"no url", ucloud.CoreEnv{RefreshTokenFile: "/t"}, false, "configuration: UCLOUD_CORE_URL is required but not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.env.CoreConfigured(); got != tc.configured {
				t.Errorf("CoreConfigured() = %v, want %v", got, tc.configured)
			}
			err := tc.env.RequireCore()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("RequireCore() = %q, want %q", got, tc.err)
			}
		})
	}
}
