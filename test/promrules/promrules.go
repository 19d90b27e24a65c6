// Package promrules loads the IM's alert rules (the PrometheusRule of deploy/monitoring) with Prometheus'
// own rule parser, and evaluates them with Prometheus' PromQL engine and rule library against samples a
// test scraped, so a test proves an alert fires on what the functions really export.
package promrules

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"sigs.k8s.io/yaml"
)

// Parser is PromQL's parser with default options.
var Parser = parser.NewParser(parser.Options{})

// Load reads a PrometheusRule manifest and parses and validates its spec's groups as Prometheus does.
func Load(path string) (*rulefmt.RuleGroups, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cr struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &cr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cr.Kind != "PrometheusRule" {
		return nil, fmt.Errorf("%s: kind %q, want PrometheusRule", path, cr.Kind)
	}
	groups, err := yaml.Marshal(map[string]any{"groups": cr.Spec.Groups})
	if err != nil {
		return nil, err
	}
	rgs, errs := rulefmt.Parse(groups, false, model.UTF8Validation, Parser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs)
	}
	return rgs, nil
}

// Alert finds the alerting rule named name.
func Alert(rgs *rulefmt.RuleGroups, name string) (rulefmt.Rule, error) {
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r, nil
			}
		}
	}
	return rulefmt.Rule{}, fmt.Errorf("no alert %s", name)
}

// Eval evaluates rule as Prometheus' rule manager would at each of times (in order) over st, and returns
// the alerts firing after the last evaluation, as "labels" strings, sorted.
func Eval(ctx context.Context, st storage.Queryable, rule rulefmt.Rule, times ...time.Time) ([]string, error) {
	expr, err := Parser.ParseExpr(rule.Expr)
	if err != nil {
		return nil, err
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	ar := rules.NewAlertingRule(rule.Alert, expr, time.Duration(rule.For), time.Duration(rule.KeepFiringFor),
		labels.FromMap(rule.Labels), labels.FromMap(rule.Annotations), labels.EmptyLabels(), "", true, slog.New(slog.DiscardHandler))
	q := rules.EngineQueryFunc(engine, st)
	for _, ts := range times {
		if _, err := ar.Eval(ctx, 0, ts, q, nil, 0); err != nil {
			return nil, err
		}
	}
	var firing []string
	for _, a := range ar.ActiveAlerts() {
		if a.State == rules.StateFiring {
			firing = append(firing, a.Labels.String())
		}
	}
	sort.Strings(firing)
	return firing, nil
}

// Append stores one scrape (series -> value, series as "name{label=\"v\"}") at ts.
func Append(ctx context.Context, st storage.Appendable, ts time.Time, samples map[string]float64) error {
	app := st.Appender(ctx)
	for series, v := range samples {
		ls, err := Parser.ParseMetric(series)
		if err != nil {
			_ = app.Rollback()
			return fmt.Errorf("series %s: %w", series, err)
		}
		if _, err := app.Append(0, ls, ts.UnixMilli(), v); err != nil {
			_ = app.Rollback()
			return err
		}
	}
	return app.Commit()
}
