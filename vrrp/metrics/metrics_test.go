package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

// scrape serves the collector of status and parses what a scrape returns.
func scrape(t *testing.T, status StatusFunc) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(Handler(New(status)))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return mfs
}

// value finds the sample of a family whose labels include want.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func TestCollector(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 50, 3, 0, time.UTC)
	st := agent.Status{Instances: []agent.InstanceStatus{{
		Name: "VI_1", Interface: "eth0", VRID: 51, Family: "IPv4", Version: 3, State: "MASTER",
		BasePriority: 150, EffectivePriority: 140, LeaseLeft: 250 * time.Millisecond,
		VIPs:           []agent.VIPStatus{{Address: "192.0.2.1/24", Dev: "eth1", Present: true}},
		Trackers:       []agent.TrackerStatus{{Kind: "script", Name: "chk", Healthy: false}},
		LastTransition: &at,
		Counters: &agent.CounterStatus{AdvertRcvd: 7, AdvertSent: 9, IPTTLErr: 3, BecomeMaster: 1,
			Dropped: map[string]uint64{"ttl": 3, "checksum": 2}, FencedEgress: 4, Foreign: 5},
	}}, Kernel: &agent.KernelCounterStatus{Adverts: map[string]uint64{"foreign": 11, "valid": 7}}}
	mfs := scrape(t, func(context.Context) (agent.Status, error) { return st, nil })

	vi := map[string]string{"iname": "VI_1", "intf": "eth0", "vrid": "51"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range vi {
			m[a] = b
		}
		return m
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"keepalived_up", nil, 1},
		{"keepalived_vrrp_state", map[string]string{"iname": "VI_1", "intf": "eth1", "vrid": "51", "ip_address": "192.0.2.1"}, 2},
		{"keepalived_advertisements_received_total", vi, 7},
		{"keepalived_advertisements_sent_total", vi, 9},
		{"keepalived_ip_ttl_errors_total", vi, 3},
		{"keepalived_become_master_total", vi, 1},
		{"keepalived_release_master_total", vi, 0},
		{"keepalived_script_status", map[string]string{"name": "chk"}, 0},
		{"xvrrp_instance_state", vi, 2},
		{"xvrrp_base_priority", vi, 150},
		{"xvrrp_effective_priority", vi, 140},
		{"xvrrp_lease_left_seconds", vi, 0.25},
		{"xvrrp_last_transition_timestamp_seconds", vi, float64(at.Unix())},
		{"xvrrp_adverts_dropped_total", with("reason", "checksum"), 2},
		{"xvrrp_fenced_packets_total", with("direction", "egress"), 4},
		{"xvrrp_fenced_packets_total", with("direction", "ingress"), 0},
		{"xvrrp_tracker_healthy", map[string]string{"iname": "VI_1", "kind": "script", "name": "chk"}, 0},
		{"xvrrp_kernel_adverts_total", map[string]string{"reason": "foreign"}, 11},
		{"xvrrp_foreign_adverts_total", map[string]string{"intf": "eth0", "family": "IPv4"}, 5},
	} {
		got, ok := value(mfs, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if mf := mfs["keepalived_advertisements_received_total"]; mf == nil || mf.GetType() != dto.MetricType_COUNTER {
		t.Errorf("keepalived_advertisements_received_total is not a counter: %v", mf)
	}
}

// A daemon that does not answer is down, and gives nothing else of its own.
func TestCollectorDown(t *testing.T) {
	mfs := scrape(t, func(context.Context) (agent.Status, error) { return agent.Status{}, errors.New("stuck") })
	if v, ok := value(mfs, "keepalived_up", nil); !ok || v != 0 {
		t.Errorf("keepalived_up = %v (found %v), want 0", v, ok)
	}
	var ours []string
	for name := range mfs {
		if name != "keepalived_up" && (len(name) > 6 && name[:6] == "xvrrp_" || len(name) > 11 && name[:11] == "keepalived_") {
			ours = append(ours, name)
		}
	}
	if diff := cmp.Diff([]string(nil), ours); diff != "" {
		t.Errorf("metrics of a daemon that did not answer (-want +got):\n%s", diff)
	}
}
