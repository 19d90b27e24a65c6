package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/iapps"
	"github.com/ucloud-im/knative-im/shared/store"
	"github.com/ucloud-im/knative-im/shared/store/storetest"
	"github.com/ucloud-im/knative-im/shared/ucloud"
	"github.com/ucloud-im/knative-im/test/env/localenv"
	"github.com/ucloud-im/knative-im/test/envtest"
	"github.com/ucloud-im/knative-im/test/fakecore"
)

const device = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD"

// stack is the shared state of the configuration functions of one test: database, jobs namespace, Core.
type stack struct {
	core *fakecore.Core
	vars map[string]string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	core := fakecore.Start(t)
	core.PersonalDrive("123", owner.CreatedBy) // the drive of config()'s folder
	dir := t.TempDir()
	if err := core.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	env.FilesystemClaim(t, ns, iapps.FilesystemVolume)
	vars := map[string]string{
		"KUBECONFIG": env.Kubeconfig, "JOBS_NAMESPACE": ns,
		"UCLOUD_PROVIDER_ID": "k8s", "UCLOUD_CORE_URL": core.URL(),
		"UCLOUD_CORE_PUBLIC_KEY_FILE": dir + "/" + fakecore.PublicKeyFile, "UCLOUD_REFRESH_TOKEN_FILE": dir + "/" + fakecore.RefreshTokenFile,
	}
	// The migrate step, then each function's own login (startFunction picks the one for its name).
	db := storetest.New(t, env.Database(t))
	for _, r := range store.Roles {
		vars[databaseURLOf+r.Function] = db.URL(r.Function)
	}
	return &stack{core: core, vars: vars}
}

// withEvents gives the stack the monitor's identity, a ServiceAccount in a namespace of its own, and the
// variables status-report (its sender policy) and the monitor (its tokens) need; it returns the identity.
func (s *stack) withEvents(t testing.TB) envtest.EventSender {
	sender := env.MonitorSender(t)
	for _, kv := range localenv.EventVars(sender.Namespace) {
		k, v, _ := strings.Cut(kv, "=")
		s.vars[k] = v
	}
	return sender
}

func (s *stack) call(t testing.TB, p *fnProc, op iapps.Op, body any) (int, []byte) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/ucloud/k8s/iapps/syncthing/"+string(op), bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.core.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s: %v", op, err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (s *stack) retrieve(t testing.TB, p *fnProc) iapps.Retrieved {
	code, body := s.call(t, p, iapps.OpRetrieve, iapps.RetrieveRequest{ProductID: "syncthing", Principal: owner})
	var got iapps.Retrieved
	if code != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("retrieve: %d %s", code, body)
	}
	return got
}

var owner = ucloud.ResourceOwner{CreatedBy: "alice#1234"}

// idleConfig has no folders, so Syncthing does not run with it: the updates touch no pods.
func idleConfig(label string) json.RawMessage {
	return json.RawMessage(`{"devices":[{"deviceId":"` + device + `","label":"` + label + `"}],"folders":[]}`)
}

func config(label string) json.RawMessage {
	return json.RawMessage(`{"devices":[{"deviceId":"` + device + `","label":"` + label + `"}],"folders":[{"id":"x1","ucloudPath":"/123/Home/Sync"}]}`)
}

// 4 update instances, 100 concurrent first updates with the same ETag: one wins, 99 are told the
// configuration changed, the winner's config is stored, and Core saw one registration.
func TestConcurrentUpdatesAcrossInstancesNeverLoseOne(t *testing.T) {
	s := newStack(t)
	var updaters []*fnProc
	for range 4 {
		updaters = append(updaters, startFunction(t, "config-update", s.vars))
	}
	const n = 100
	codes := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, body := s.call(t, updaters[i%4], iapps.OpUpdate, iapps.UpdateRequest{ProductID: "syncthing", Principal: owner,
				Config: config(fmt.Sprintf("req-%d", i)), ExpectedETag: ptrTo(iapps.InitialETag)})
			codes[i], bodies[i] = code, string(body)
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	refused := 0
	for i, c := range codes {
		switch {
		case c == 200:
			if winner >= 0 {
				t.Fatalf("two updates with the same ETag succeeded: %d and %d", winner, i)
			}
			winner = i
		case c == 400 && strings.Contains(bodies[i], "changed since you last loaded"):
			refused++
		default:
			t.Errorf("update %d: %d %s", i, c, bodies[i])
		}
	}
	if winner < 0 || refused != n-1 {
		t.Fatalf("%d refused and winner %d; want 99 and one winner", refused, winner)
	}
	got := s.retrieve(t, startFunction(t, "config-retrieve", s.vars))
	if !strings.Contains(string(got.Config), fmt.Sprintf(`"req-%d"`, winner)) {
		t.Fatalf("stored %s, but request %d won", got.Config, winner)
	}
	if reg := s.core.Registered(); len(reg) != 1 {
		t.Fatalf("Core saw %d registrations for one key, want 1", len(reg))
	}
}

// After an update through instance A, instance B (with its cache) serves the new ETag once the change's
// notification arrives; the worst delay over 200 tries is printed.
func TestRetrieveOnAnotherInstanceSeesUpdates(t *testing.T) {
	s := newStack(t)
	a := startFunction(t, "config-update", s.vars)
	b := startFunction(t, "config-retrieve", s.vars)
	const tries = 200
	var delays []time.Duration
	for i := range tries {
		prev := s.retrieve(t, b).ETag
		s.retrieve(t, b) // served from B's cache from here on
		code, body := s.call(t, a, iapps.OpUpdate, iapps.UpdateRequest{ProductID: "syncthing", Principal: owner, Config: idleConfig(fmt.Sprintf("try-%d", i))})
		if code != 200 {
			t.Fatalf("update %d: %d %s", i, code, body)
		}
		done := time.Now()
		for {
			got := s.retrieve(t, b)
			if got.ETag != prev {
				if !strings.Contains(string(got.Config), fmt.Sprintf(`"try-%d"`, i)) {
					t.Fatalf("new ETag with the wrong config: %s", got.Config)
				}
				break
			}
			if time.Since(done) > 5*time.Second {
				t.Fatalf("instance B still serves ETag %s 5 s after the update committed", prev)
			}
		}
		delays = append(delays, time.Since(done))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	figure(t, "cross-instance retrieve staleness over %d updates: median %s, p99 %s, worst %s",
		tries, delays[tries/2], delays[tries*99/100], delays[tries-1])
}

// Core never sends CloudEvents, so the configuration functions take none. A job pod that sends one the
// way the removed iapp Triggers did (no token, the victim as principal, the attacker's device) to each
// configuration function is refused like any call without Core's token: nothing read, stored, registered.
func TestIntegratedAppEventsFromAJobPodAreRefused(t *testing.T) {
	s := newStack(t)
	victim := ucloud.ResourceOwner{CreatedBy: "victim#1"}
	attack := iapps.UpdateRequest{ProductID: "syncthing", Principal: victim, Config: config("attacker")}
	var retrieve *fnProc
	for _, op := range []iapps.Op{iapps.OpRetrieve, iapps.OpUpdate, iapps.OpReset, iapps.OpRestart} {
		p := startFunction(t, "config-"+string(op), s.vars)
		if op == iapps.OpRetrieve {
			retrieve = p
		}
		raw, _ := json.Marshal(attack)
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "evil-" + string(op), "Ce-Source": "/job",
			"Ce-Type": "com.github.ucloud-im.iapp." + string(op), "Ce-Iapp": "syncthing"} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e ucloud.Error
		if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.StatusCode != http.StatusUnauthorized {
			t.Fatalf("iapp %s event from a job pod: %d %s, want 401 in UCloud's error shape", op, resp.StatusCode, body)
		}
	}
	code, body := s.call(t, retrieve, iapps.OpRetrieve, iapps.RetrieveRequest{ProductID: "syncthing", Principal: victim})
	if code != 200 || strings.Contains(string(body), "attacker") {
		t.Fatalf("the victim's configuration after the forged events: %d %s", code, body)
	}
	if got := s.core.Registered(); len(got) != 0 {
		t.Fatalf("the forged events registered %d jobs with Core", len(got))
	}
}

func ptrTo[T any](v T) *T { return &v }
