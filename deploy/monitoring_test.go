package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/ucloud-im/knative-im/shared/metrics"
	"github.com/ucloud-im/knative-im/test/promrules"
)

// The alert rules load with Prometheus' own rule parser (rulefmt: validation, PromQL, templates), the four
// alerts the operator needs are there, and every metric they name is one the IM exports.
func TestMonitoringRulesLoadAndNameExportedMetrics(t *testing.T) {
	rgs, err := promrules.Load("monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	var alerts []string
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkNames(t, "alert "+r.Alert, r.Expr, exported)
		}
	}
	sort.Strings(alerts)
	want := "[UCloudIMCoreErrorRatioHigh UCloudIMJobUpdatesNotReachingCore UCloudIMNoMonitorLeader UCloudIMWorkQueueGrowing]"
	if got := "[" + strings.Join(alerts, " ") + "]"; got != want {
		t.Errorf("alerts %v, want %s", alerts, want)
	}
	leader, err := promrules.Alert(rgs, "UCloudIMNoMonitorLeader")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(leader.For) != time.Minute {
		t.Errorf("UCloudIMNoMonitorLeader waits %s, want 1m", time.Duration(leader.For))
	}
}

// The Grafana dashboard is valid JSON of a dashboard, and every panel's every query parses as PromQL and
// names only metrics the IM exports.
func TestMonitoringDashboardQueriesParse(t *testing.T) {
	raw, err := os.ReadFile("monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels: %q %q %d", d.Title, d.UID, len(d.Panels))
	}
	exported := exportedMetrics(t)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkNames(t, "panel "+p.Title, tg.Expr, exported)
		}
	}
}

// The component renders with kustomize on top of the project's kustomization's namespace: PodMonitor,
// PrometheusRule, NetworkPolicy and the dashboard ConfigMap with the Grafana sidecar's label.
func TestMonitoringComponentRenders(t *testing.T) {
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir("monitoring")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("monitoring", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.WriteFile("/k/monitoring/"+e.Name(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.WriteFile("/k/kustomization.yaml", []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents:\n  - monitoring\n")); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/k")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range res.Resources() {
		got[r.GetKind()+"/"+r.GetName()] = true
		if r.GetKind() == "ConfigMap" && r.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("dashboard ConfigMap %s lacks grafana_dashboard=1", r.GetName())
		}
	}
	for _, want := range []string{"PodMonitor/ucloud-im", "PrometheusRule/ucloud-im", "NetworkPolicy/ucloud-im-metrics-scrape", "ConfigMap/ucloud-im-dashboard"} {
		if !got[want] {
			t.Errorf("component renders %v, missing %s", got, want)
		}
	}
}

// exportedMetrics is every metric name a process of the IM can export: each family set made and touched
// once, gathered, with the series names histograms add.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	r := metrics.New("any")
	metrics.NewHTTP(r).Observe("r", "GET", 200, time.Millisecond)
	c := metrics.NewCore(r)
	c.ObserveCall("c", metrics.OutcomeOK, time.Millisecond)
	c.ObserveAttempt("c", 200)
	q := metrics.NewWorkQueue(r)
	q.NewDepthMetric("jobs").Inc()
	q.NewAddsMetric("jobs").Inc()
	q.NewLatencyMetric("jobs").Observe(1)
	q.NewWorkDurationMetric("jobs").Observe(1)
	q.NewUnfinishedWorkSecondsMetric("jobs").Set(1)
	q.NewLongestRunningProcessorSecondsMetric("jobs").Set(1)
	q.NewRetriesMetric("jobs").Inc()
	m := metrics.NewMonitor(r)
	m.Transition("RUNNING")
	m.ObserveReconcile(nil, time.Millisecond)
	metrics.NewOutbox(r, func(context.Context) (metrics.OutboxStats, error) { return metrics.OutboxStats{}, nil })
	ca := metrics.NewCache(r)
	ca.Hit()
	ca.Miss()
	ca.Invalidated("change")
	metrics.NewSessions(r).Open("shell")
	families, err := r.Prometheus().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			names[f.GetName()+suffix] = true
		}
	}
	return names
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// checkNames parses expr as PromQL and checks every metric it selects is exported.
func checkNames(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	e, err := promrules.Parser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return
	}
	n := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			n++
			if !labelName.MatchString(vs.Name) || !exported[vs.Name] {
				t.Errorf("%s: %q selects %q, which no function exports", where, expr, vs.Name)
			}
		}
		return nil
	})
	if n == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
}
