package conformance_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/jobs"
	"github.com/ucloud-im/knative-im/shared/providerinfo"
	"github.com/ucloud-im/knative-im/test/conformance"
)

// Each kind of route has the body limit its real payloads call for: a body over it is 413 in UCloud's
// shape, whether its length is declared (refused before it is read) or not (chunked: refused once the
// limit is read), and it changes nothing; a body at the limit's side of the fixture is served.
func TestEveryKindOfRouteRefusesABodyOverItsOwnLimit(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		call  string
		limit int64
	}{
		{"jobs.create", jobs.JobCallMaxBody},
		{"jobs.terminate", jobs.JobCallMaxBody},
		{"jobs.suspend", jobs.JobCallMaxBody},
		{"jobs.requestDynamicParameters", jobs.ApplicationCallMaxBody},
		{"jobs.openTerminalInFolder", iapps.TerminalCallMaxBody},
		{"iapps.syncthing.update", iapps.MaxBody},
		{"iapps.syncthing.retrieve", iapps.MaxBody},
		{"integration.init", providerinfo.NoBodyMax},
	} {
		c, body := r.fixture(tc.call)
		if int64(len(body)) > tc.limit/4 {
			t.Errorf("%s: core2's body (%d bytes) is over a quarter of the limit %d", tc.call, len(body), tc.limit)
		}
		over := pad(t, body, tc.limit+1)
		for _, chunked := range []bool{false, true} {
			a := r.sendRaw(c, over, chunked)
			r.refused(a, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE")
			if want := fmt.Sprintf("larger than %d bytes", tc.limit); !strings.Contains(string(a.body), want) {
				t.Errorf("%s (chunked %v): %s, want %q", tc.call, chunked, a.body, want)
			}
		}
	}
	// A GET that Core sends without a body: a body of more than a few KiB is refused too.
	c, _ := r.fixture("jobs.retrieveProducts")
	r.refused(r.sendRaw(c, bytes.Repeat([]byte(" "), providerinfo.NoBodyMax+1), false), http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE")

	// Nothing of the refused calls happened.
	if r.core.KnowsJob(fixtureJob) || r.pods(fixtureJob) != 0 {
		t.Fatalf("a refused create left: Core knows the job %v, %d pods", r.core.KnowsJob(fixtureJob), r.pods(fixtureJob))
	}
	a := r.send(r.fixture("iapps.syncthing.retrieve"))
	r.fits(a)
	if !strings.Contains(string(a.body), `"devices":[]`) {
		t.Fatalf("a refused update changed the configuration: %s", a.body)
	}
}

// A job with many parameters, over the 1 MiB the functions used to allow, is created: 1,200 text
// parameters of about 900 bytes each (value in the specification, definition in the resolved
// application), as core2 would send a job of a large workflow application.
func TestALargeJobIsCreated(t *testing.T) {
	r := newRig(t)
	c, body := r.fixture("jobs.create")
	big := edit(t, body, func(m map[string]any) {
		it := item(m, 0)
		params := it["specification"].(map[string]any)["parameters"].(map[string]any)
		var template map[string]any
		for _, v := range params {
			if p := v.(map[string]any); p["type"] == "text" {
				template = p
			}
		}
		invocation := it["status"].(map[string]any)["resolvedApplication"].(map[string]any)["invocation"].(map[string]any)
		defs := invocation["parameters"].([]any)
		def := defs[0].(map[string]any)
		for i := range 1200 {
			name := fmt.Sprintf("option_%d", i)
			p := map[string]any{}
			for k, v := range template {
				p[k] = v
			}
			p["value"] = strings.Repeat("v", 200)
			params[name] = p
			d := map[string]any{}
			for k, v := range def {
				d[k] = v
			}
			d["name"], d["type"], d["title"] = name, "text", "Option "+name
			d["description"] = strings.Repeat("What this option does. ", 10)
			defs = append(defs, d)
		}
		invocation["parameters"] = defs
	})
	if len(big) <= 1<<20 || int64(len(big)) > jobs.JobCallMaxBody {
		t.Fatalf("the large job is %d bytes: want over 1 MiB and within the job calls' limit", len(big))
	}
	t.Logf("large job: %d bytes", len(big))
	a := r.send(c, big)
	r.fits(a)
	if !r.core.KnowsJob(fixtureJob) || r.pods(fixtureJob) != 1 {
		t.Fatalf("the large job: Core knows it %v, %d pods", r.core.KnowsJob(fixtureJob), r.pods(fixtureJob))
	}
	// And the calls that carry it afterwards.
	terminate, body := r.fixture("jobs.terminate")
	r.fits(r.send(terminate, edit(t, body, func(m map[string]any) {
		var job map[string]any
		_ = json.Unmarshal(big, &job)
		m["items"] = job["items"]
	})))
}

// pad adds a padding field to a JSON object body so that it is size bytes long (still valid JSON: core2's
// decoder ignores unknown fields, so only the size can refuse it).
func pad(t *testing.T, body []byte, size int64) []byte {
	t.Helper()
	trimmed := bytes.TrimSuffix(bytes.TrimSpace(body), []byte("}"))
	head := append(append([]byte{}, trimmed...), []byte(`,"padding":"`)...)
	n := size - int64(len(head)) - 2
	if n < 0 {
		t.Fatalf("body of %d bytes is already over %d", len(body), size)
	}
	out := append(head, bytes.Repeat([]byte("x"), int(n))...)
	out = append(out, '"', '}')
	if !json.Valid(out) || int64(len(out)) != size {
		t.Fatalf("padding made %d bytes, valid %v", len(out), json.Valid(out))
	}
	return out
}

// sendRaw makes the call as core2 does but with the body as given, with its length declared or chunked.
func (r *rig) sendRaw(c conformance.Call, body []byte, chunked bool) answer {
	r.t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.NopCloser(rd) // hides the length: Go's client sends it chunked
	}
	req, err := http.NewRequest(c.Method, r.url+c.Path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.core.Token())
	req.Header.Set("Content-Type", "application/json")
	if c.Username != "" {
		req.Header.Set("ucloud-username", base64.StdEncoding.EncodeToString([]byte(c.Username)))
	}
	if chunked != (req.ContentLength <= 0) {
		r.t.Fatalf("chunked %v but Content-Length %d", chunked, req.ContentLength)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s: %v", c.Name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{call: c, status: resp.StatusCode, body: raw}
}
