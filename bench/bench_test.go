package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/vrrp"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// A link cut at 100 ms intervals: h1's last advert at 50 ms, the fault at
// 60 ms, h2's first advert 361 ms after h1's last, its GARP 0.5 ms later, the
// first probe it answers 0.3 ms after that; h1 answers directed probes for
// 3 ms after h2 began.
func TestMeasure(t *testing.T) {
	tr := Trial{
		Start: at(60), End: at(1000), Old: "h1", New: "h2", Tick: time.Millisecond,
		MasterDown: 361 * time.Millisecond,
		Adverts: []Advert{
			{at(-50), "h1", 150}, {at(50), "h1", 150},
			{at(411), "h2", 100}, {at(511), "h2", 100},
		},
		ARPs: []GARP{{at(-500), "h1"}, {at(411.5), "h2"}},
	}
	for ms := 0.0; ms < 1000; ms++ {
		var from string
		switch {
		case ms < 60:
			from = "h1"
		case ms >= 412:
			from = "h2"
		}
		tr.Probes = append(tr.Probes, lab.Answer{Sent: at(ms), From: from})
		var d []string
		if ms < 415 {
			d = append(d, "h1")
		}
		if ms >= 412 {
			d = append(d, "h2")
		}
		tr.Directed = append(tr.Directed, lab.DirectedRound{Sent: at(ms), From: d})
	}
	got := tr.Measure()
	want := map[string]time.Duration{
		MetricDetect: 361 * time.Millisecond,
		MetricGARP:   500 * time.Microsecond,
		MetricAnswer: 500 * time.Microsecond, // the probe at 412 ms
		MetricOutage: 353 * time.Millisecond, // answered at 59 ms, then at 412 ms
		MetricDual:   3 * time.Millisecond,   // rounds 412, 413, 414
	}
	for m, w := range want {
		if got[m] != w {
			t.Errorf("%s = %v, want %v", m, got[m], w)
		}
	}
}

// A graceful stop: h1's priority-0 advert does not count as holding the backup
// back, and the takeover comes before Master_Down expiry (garp < 0). A trial
// with no new master advert has no detect, garp or answer, and its outage is
// the whole window.
func TestMeasureEdges(t *testing.T) {
	tr := Trial{Start: at(10), End: at(200), Old: "h1", New: "h2", MasterDown: 361 * time.Millisecond,
		Adverts: []Advert{{at(0), "h1", 150}, {at(20), "h1", 0}, {at(80), "h2", 100}},
		ARPs:    []GARP{{at(80.2), "h2"}},
	}
	got := tr.Measure()
	if got[MetricDetect] != 80*time.Millisecond {
		t.Errorf("detect = %v, want 80ms (from the last advert before priority 0)", got[MetricDetect])
	}
	if got[MetricGARP] >= 0 {
		t.Errorf("garp = %v, want negative", got[MetricGARP])
	}
	none := Trial{Start: at(0), End: at(100), Old: "h1", New: "h2"}
	got = none.Measure()
	for _, m := range []string{MetricDetect, MetricGARP, MetricAnswer} {
		if _, ok := got[m]; ok {
			t.Errorf("%s measured without a new master", m)
		}
	}
	if got[MetricOutage] != 100*time.Millisecond {
		t.Errorf("outage = %v, want the whole 100ms", got[MetricOutage])
	}
}

// The outage counts probes that went unanswered, not the prober's own stalls:
// probes every millisecond, answered by h1 up to 10 ms, one lost at 11 ms, then
// answered by h2 from 12 ms; the prober sent nothing from 20 to 60 ms.
func TestOutageCountsLostProbes(t *testing.T) {
	var probes []lab.Answer
	for ms := 0.0; ms < 100; ms++ {
		if ms > 20 && ms < 60 {
			continue
		}
		from := "h1"
		switch {
		case ms == 11:
			from = ""
		case ms > 11:
			from = "h2"
		}
		probes = append(probes, lab.Answer{Sent: at(ms), From: from})
	}
	if got := outage(probes, at(5), at(99)); got != 2*time.Millisecond {
		t.Errorf("outage = %v, want 2ms (10 ms to 12 ms), not the prober's 40 ms stall", got)
	}
	if got := outage(probes, at(30), at(99)); got != 0 {
		t.Errorf("outage with every probe answered = %v, want 0", got)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 95: 95, 99: 99, 100: 100, 0: 1} {
		if got := Percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty: want 0")
	}
	if ds[0] != 100 {
		t.Error("Percentile sorted its argument")
	}
}

func TestParseInterval(t *testing.T) {
	for s, want := range map[string]Interval{
		"1s/v2": {2, time.Second}, "100ms": {3, 100 * time.Millisecond}, "10ms/v3": {3, 10 * time.Millisecond},
	} {
		if got, err := ParseInterval(s); err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "abc", "100ms/v2", "5ms", "15ms", "1s/v4", "1500ms/v2"} {
		if _, err := ParseInterval(s); err == nil {
			t.Errorf("ParseInterval(%q): no error", s)
		}
	}
}

func TestDecodeFrames(t *testing.T) {
	h1mac, _ := net.ParseMAC("02:00:5e:10:00:01")
	h2mac, _ := net.ParseMAC("02:00:5e:10:00:02")
	h1, h2 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	adv := vrrp.Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	pkt, err := adv.AppendPacket(nil, h1, vrrp.Group4, 255)
	if err != nil {
		t.Fatal(err)
	}
	eth := func(src net.HardwareAddr, typ uint16, payload []byte) []byte {
		b := append([]byte{1, 0, 0x5e, 0, 0, 0x12}, src...)
		return append(append(b, byte(typ>>8), byte(typ)), payload...)
	}
	arp := func(op uint16, mac net.HardwareAddr, spa, tpa netip.Addr) []byte {
		b := []byte{0, 1, 8, 0, 6, 4, 0, byte(op)}
		b = append(b, mac...)
		b = append(b, spa.AsSlice()...)
		b = append(b, 0, 0, 0, 0, 0, 0)
		return append(b, tpa.AsSlice()...)
	}
	frames := []lab.Frame{
		{Time: at(1), Data: eth(h1mac, 0x0800, pkt)},
		{Time: at(2), Data: eth(h2mac, 0x0806, arp(1, h2mac, vip, vip))}, // gratuitous request
		{Time: at(3), Data: eth(h2mac, 0x0806, arp(2, h2mac, vip, h1))},  // unsolicited reply
		{Time: at(4), Data: eth(h2mac, 0x0806, arp(1, h2mac, h2, h1))},   // an ordinary request
		{Time: at(5), Data: eth(h1mac, 0x86dd, pkt)},                     // not IPv4
		{Time: at(6), Data: []byte{1, 2, 3}},                             // runt
	}
	adverts, garps := DecodeFrames(frames, vip,
		map[netip.Addr]string{h1: "h1", h2: "h2"},
		map[string]string{h1mac.String(): "h1", h2mac.String(): "h2"})
	if len(adverts) != 1 || adverts[0] != (Advert{at(1), "h1", 150}) {
		t.Errorf("adverts %+v", adverts)
	}
	if len(garps) != 2 || garps[0] != (GARP{at(2), "h2"}) || garps[1] != (GARP{at(3), "h2"}) {
		t.Errorf("gratuitous ARPs %+v", garps)
	}
}

func sampleReport() *Report {
	r := &Report{Trials: 2, Impls: []string{Xvrrp, Keepalived}, Machine: "test"}
	for _, impl := range r.Impls {
		for trial := 1; trial <= 2; trial++ {
			f := time.Duration(trial)
			if impl == Keepalived {
				f *= 2
			}
			r.Results = append(r.Results, Result{Impl: impl, Mode: ModeLinkCut, Interval: "100ms/v3", Trial: trial,
				MasterDown: 361 * time.Millisecond,
				Metrics:    map[string]time.Duration{MetricDetect: 361 * time.Millisecond, MetricOutage: f * 300 * time.Millisecond, MetricDual: 0}})
		}
	}
	r.Cost = []CostResult{{Impl: Xvrrp, Instances: 5, Interval: "20ms/v3", Idle: Usage{1, 0.01, 100}, Flood: Usage{1, 0.02, 120},
		FloodRate: 1000, Forged: 1000, KernelDrops: map[string]uint64{"ttl": 1000}}}
	return r
}

func TestReportFormats(t *testing.T) {
	r := sampleReport()
	sums := r.Summaries()
	var outage []Summary
	for _, s := range sums {
		if s.Metric == MetricOutage {
			outage = append(outage, s)
		}
	}
	if len(outage) != 2 || outage[0].Impl != Xvrrp || outage[0].P50 != 300*time.Millisecond || outage[1].Max != 1200*time.Millisecond {
		t.Fatalf("outage summaries %+v", outage)
	}

	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"linkcut, 100ms/v3", "xvrrp p50", "keepalived p50", "ratio p50", "2.0x", "cost of a backup", "1000 of 1000"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Results   []Result  `json:"results"`
		Summaries []Summary `json:"summaries"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 4 || back.Results[3].Metrics[MetricOutage] != 1200*time.Millisecond || len(back.Summaries) != len(sums) {
		t.Errorf("JSON round trip: %+v", back)
	}

	var c bytes.Buffer
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+4*3 || rows[0][5] != "ms" || rows[2][4] != MetricOutage || rows[2][5] != "300.00" {
		t.Errorf("CSV rows %q", rows)
	}

	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	lines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("%d CDF lines, want 2 (one per implementation and interval)", lines)
	}
}

// TestCostGoals: medians over alternating runs, and the goals read off them.
func TestCostGoals(t *testing.T) {
	u := func(cpu float64, wakeups int) Usage {
		return Usage{Seconds: 10, CPUSeconds: cpu / 10, Wakeups: wakeups}
	}
	r := &Report{Impls: []string{Xvrrp, Keepalived}, Cost: []CostResult{
		{Impl: Xvrrp, Run: 1, Idle: u(1, 0), Master: u(20, 100)},
		{Impl: Keepalived, Run: 1, Idle: u(50, 5000), Master: u(60, 8000)},
		{Impl: Xvrrp, Run: 2, Idle: u(3, 20), Master: u(40, 100)},
		{Impl: Keepalived, Run: 2, Idle: u(10, 5000), Master: u(70, 8000)},
		{Impl: Xvrrp, Run: 3, Idle: u(2, 5), Master: u(25, 100)},
		{Impl: Keepalived, Run: 3, Idle: u(20, 5000), Master: u(65, 8000)},
	}}
	sums := r.CostSummaries()
	if len(sums) != 2 || sums[0].Runs != 3 || sums[0].BackupCPU != (Spread{2, 1, 3}) || sums[0].BackupWakeups != (Spread{0.5, 0, 2}) ||
		sums[1].MasterCPU != (Spread{65, 60, 70}) {
		t.Fatalf("summaries %+v", sums)
	}
	var met []bool
	for _, g := range CostGoals(sums) {
		met = append(met, g.Met)
	}
	// 0.5 wakeups/s; backup 2% vs 20% (≤ 4%); master 25% vs 65% (≤ 32.5%).
	if want := []bool{true, true, true}; !slices.Equal(met, want) {
		t.Errorf("goals met %v, want %v: %+v", met, want, CostGoals(sums))
	}
	r.Cost[4].Master = u(40, 100) // master median 40%: more than half of 65%
	if g := CostGoals(r.CostSummaries()); g[2].Met {
		t.Errorf("master goal met at 40%% against 65%%: %+v", g[2])
	}
}
