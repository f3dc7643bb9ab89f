package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

const metricsConfig = `global_defs {
    vrrp_garp_master_delay 0
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.1/24
    }
}
`

// scrapeMetrics fetches /metrics from addr as a client in the host would.
func scrapeMetrics(t *testing.T, h *lab.Host, addr string) []byte {
	t.Helper()
	var body []byte
	err := h.Do(func() error {
		// The socket is made on this thread, in the host's namespace.
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		body, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return body
}

// sample is the value of the family's sample whose labels include want.
func sample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Errorf("no %s in the scrape", name)
		return -1
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
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Errorf("no %s%v in the scrape", name, want)
	return -1
}

// TestMetrics: a daemon with --metrics-listen serves metrics that parse, pass
// promtool, and count what the test sent it — valid adverts, one of
// priority 0, forgeries by reason, another router's adverts — as `xvrrp
// status` does, under the keepalived exporters' names.
func TestMetrics(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1, Client: true}, "promtool")
	h1, client := l.Hosts[0], l.Client
	addr := netip.AddrPortFrom(h1.IPv4.Addr(), 9650).String()
	x1, err := h1.StartXvrrp(xvrrpBin, metricsConfig, "--metrics-listen", addr)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")

	src := client.IPv4.Addr()
	build := func(a vrrp.Advert, ttl uint8) []byte {
		b, err := a.AppendPacket(nil, src, vrrp.Group4, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	advert := func(vrid, prio uint8) vrrp.Advert {
		return vrrp.Advert{Version: 3, VRID: vrid, Priority: prio, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	}
	badSum := build(advert(51, 254), 255)
	badSum[20+6] ^= 0xff
	badType := build(advert(51, 254), 255)
	badType[20] = 0x32 // v3, type 2: checked before the checksum
	const (
		valid = 25 // then one of priority 0
		m     = 40 // of each forgery
	)
	forgeries := [][]byte{build(advert(51, 254), 254), badSum, badType, build(advert(99, 254), 255)}
	err = client.WithRawIPv4(func(send func([]byte, netip.Addr) error) error {
		for range m {
			for _, f := range forgeries {
				if err := send(f, vrrp.Group4); err != nil {
					return err
				}
			}
			time.Sleep(time.Millisecond)
		}
		// A master of priority 254 for a moment, then it resigns.
		for range valid {
			if err := send(build(advert(51, 254), 255), vrrp.Group4); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
		return send(build(advert(51, 0), 255), vrrp.Group4)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Backup under the priority-254 adverts, master again after the resignation.
	deadline := time.Now().Add(5 * time.Second)
	for countIn(x1.Proc, "(VI_1) Entering MASTER STATE") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	body := scrapeMetrics(t, h1, addr)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the scrape: %v\n%s", err, body)
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

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
		{"keepalived_advertisements_received_total", vi, valid + 1},
		{"keepalived_priority_zero_received_total", vi, 1},
		{"keepalived_ip_ttl_errors_total", vi, m},
		{"keepalived_invalid_type_received_total", vi, m},
		{"keepalived_authentication_failure_total", vi, 0},
		{"xvrrp_adverts_dropped_total", with("reason", "checksum"), m},
		{"xvrrp_adverts_dropped_total", with("reason", "ttl"), m},
		{"xvrrp_kernel_adverts_total", map[string]string{"reason": "foreign"}, m},
		{"xvrrp_foreign_adverts_total", map[string]string{"intf": "eth0", "family": "IPv4"}, m},
		{"keepalived_release_master_total", vi, 1},
		{"keepalived_become_master_total", vi, 2},
		{"keepalived_vrrp_state", map[string]string{"iname": "VI_1", "intf": "eth0", "vrid": "51", "ip_address": "192.0.2.1"}, 2},
		{"xvrrp_instance_state", vi, 2},
		{"xvrrp_base_priority", vi, 100},
		{"xvrrp_effective_priority", vi, 100},
	} {
		if got := sample(t, mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"keepalived_advertisements_sent_total", "xvrrp_lease_renewals_total", "xvrrp_lease_left_seconds",
		"xvrrp_last_transition_timestamp_seconds"} {
		if got := sample(t, mfs, name, vi); got <= 0 {
			t.Errorf("%s = %v, want > 0", name, got)
		}
	}

	// `xvrrp status` says the same, under keepalived's statistics names.
	doc := status(t, h1, x1)
	c := doc.Instances[0].Counters
	if c == nil || c.AdvertRcvd != valid+1 || c.PriZeroRcvd != 1 || c.IPTTLErr != m || c.InvalidTypeRcvd != m ||
		c.Dropped["checksum"] != m || c.BecomeMaster != 2 || c.ReleaseMaster != 1 || c.AdvertSent == 0 || c.Foreign != m ||
		doc.Kernel == nil || doc.Kernel.Adverts["foreign"] != m {
		t.Errorf("status counters: %+v, kernel %+v", c, doc.Kernel)
	}
	out, err := h1.Run(context.Background(), xvrrpBin, "status", "--state-dir", x1.StateDir, "--pin-dir", x1.PinDir)
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("ip_ttl_err=%d", m)) {
		t.Errorf("status table: %v\n%s", err, out)
	}

	// The kernel's counters outlive the daemon; the daemon's went with it.
	x1.Signal(syscall.SIGKILL)
	x1.Wait()
	doc = status(t, h1, x1)
	c = doc.Instances[0].Counters
	if doc.Source != "kernel" || c == nil || c.AdvertRcvd != valid+1 || c.IPTTLErr != m || c.AdvertSent != 0 ||
		doc.Kernel == nil || doc.Kernel.Adverts["foreign"] != m {
		t.Errorf("kernel's status counters: %+v, kernel %+v", c, doc.Kernel)
	}
}
