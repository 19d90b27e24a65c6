// Package providerinfo answers the provider-level calls UCloud/Core makes that concern no job: the
// integration manifest and init, the branding, and the support (retrieveProducts) of the resource kinds
// this provider does not offer. Core polls most of them every 10 s beside jobs/retrieveProducts; each is
// answered as the original Kubernetes IM answers it where that is true of this IM, and says so where not.
package providerinfo

import (
	"context"
	"net/http"

	"github.com/ucloud-im/knative-im/shared/fn"
	"github.com/ucloud-im/knative-im/shared/ucloud"
)

// NoBodyMax bounds these calls' bodies: all are GETs without one except integration/init, whose body is
// one username (25 bytes in core2's fixture; UCloud usernames are short), so 4 KiB is generous.
const NoBodyMax = 4 << 10

// Manifest is orchestrators.ProviderIntegrationManifest.
type Manifest struct {
	// Enabled says a user must connect to the provider (Core calls integration/connect) before using it.
	Enabled bool `json:"enabled"`
}

// Branding is orchestrators.ProviderBranding.
type Branding struct {
	ID                 string               `json:"id"`
	Title              string               `json:"title"`
	ShortTitle         string               `json:"shortTitle"`
	ShortDescription   string               `json:"shortDescription"`
	Description        string               `json:"description"`
	URL                string               `json:"url"`
	Sections           []BrandingSection    `json:"sections"`
	ProductDescription []ProductDescription `json:"productDescription"`
}

// BrandingSection is orchestrators.ProviderBrandingSection.
type BrandingSection struct {
	Description string `json:"description"`
}

// ProductDescription is orchestrators.ProviderBrandingProductDescription.
type ProductDescription struct {
	ShortDescription string          `json:"shortDescription"`
	Section          BrandingSection `json:"section"`
	Category         string          `json:"category"`
}

// Handlers are the handlers of these calls for provider (other provider ids are 404, as on every route),
// by their path in the provider API's path table (appdomain.Calls), which job-control registers them on.
func Handlers(provider string) map[string]http.Handler {
	hs := map[string]http.Handler{}
	handle := func(path string, h http.Handler) {
		hs[path] = fn.MaxBody(NoBodyMax, fn.ForProvider(provider, h))
	}
	// The original IM says enabled: true and then approves every connection at once (its connect answers
	// "done" without asking the user anything). This IM serves no integration/connect and maps no users,
	// so it says false: Core then counts every user as connected and never sends a connect that would fail.
	// (Core counts provider id "k8s" as connected whatever the manifest says.)
	handle("{provider}/integration/retrieveManifest", answer(Manifest{Enabled: false}))
	// Core sends init only when a call on a user's behalf got 449 or 503 (the original IM's "start this
	// user's instance"), ignores its answer and retries the call. The original Kubernetes IM starts no
	// per-user instances and answers 404; this IM has none either (every user is served by the same
	// functions, ready or not), so it answers that there is nothing to start: 200 with util.Empty.
	handle("{provider}/integration/init", fn.Handle(func(_ context.Context, _ *http.Request, req struct {
		Username string `json:"username"`
	}) (struct{}, error) {
		return struct{}{}, nil
	}))
	// The original answers its configured branding; this IM has none configured, so it names itself by
	// its provider id (Core shows the title) and leaves the rest empty, lists empty rather than null.
	handle("{provider}/provider/branding/retrieveInfo", answer(Branding{ID: provider, Title: provider, ShortTitle: provider,
		Sections: []BrandingSection{}, ProductDescription: []ProductDescription{}}))
	// The original answers each kind's products from its configuration (none configured: an empty list).
	// An empty list tells Core this provider has no product of the kind, so it offers none to users.
	// The kinds are those Core polls besides jobs and this provider does not offer: drives, public links,
	// public IPs, licenses, private networks.
	for _, kind := range []string{"files/collections", "ingresses", "networkips", "licenses", "private-networks"} {
		handle("{provider}/"+kind+"/retrieveProducts", answer(ucloud.BulkResponse[struct{}]{Responses: []struct{}{}}))
	}
	return hs
}

func answer(v any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fn.WriteJSON(w, http.StatusOK, v) })
}
