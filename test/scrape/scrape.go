// Package scrape reads a Prometheus metrics endpoint as a test or a benchmark does: every sample by its
// series name ("name{label="value",...}", labels sorted), so assertions compare whole values.
package scrape

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are one scrape: series -> value. Histograms give name_count and name_sum per series.
type Samples map[string]float64

// Get scrapes url (the /metrics of a listener) once.
func Get(url string) (Samples, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("scrape %s: %d %s", url, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	out := Samples{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := Series(name, labels(m))
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[key] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[Series(name+"_count", labels(m))] = float64(m.GetHistogram().GetSampleCount())
				out[Series(name+"_sum", labels(m))] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out, nil
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// Series names one series: name{k="v",...} with the labels sorted, or the bare name without labels.
func Series(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// Delta is after - before for every series whose name starts with one of prefixes and that changed.
func Delta(before, after Samples, prefixes ...string) Samples {
	d := Samples{}
	for k, v := range after {
		if !hasPrefix(k, prefixes) {
			continue
		}
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return len(prefixes) == 0
}
