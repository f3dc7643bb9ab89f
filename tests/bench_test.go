package tests

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// BenchmarkTakeover measures, over 50 failovers of a 20 ms VRRPv3 pair, the time
// from the backup's Master_Down expiry (the master's last advert as h2 captured
// it, plus Master_Down_Interval) to h2's first gratuitous ARP and to the first
// probe (sent every 1 ms) that h2 answered. Run it with
// `go test -run XXX -bench Takeover -benchtime 1x ./tests`.
func BenchmarkTakeover(b *testing.B) {
	const trials = 50
	for b.Loop() {
		l := labtest.New(b, lab.Options{Hosts: 2, Client: true})
		h1, h2 := l.Hosts[0], l.Hosts[1]
		for _, h := range l.Hosts {
			if err := h.StartResponder(); err != nil {
				b.Fatal(err)
			}
		}
		n1, n2 := node{prio: 150, interval: "0.02"}, node{prio: 100, interval: "0.02"}
		x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(n1))
		if err != nil {
			b.Fatal(err)
		}
		waitLog(b, x1, "(VI_1) Entering MASTER STATE")
		x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(n2))
		if err != nil {
			b.Fatal(err)
		}
		waitLog(b, x2, "(VI_1) Entering BACKUP STATE (init)")
		mdi := vrrp.MasterDownInterval(3, 100, 20*time.Millisecond, 3)

		var toGARP, toProbe []time.Duration
		for trial := range trials {
			capture, err := h2.Capture("vrrp or arp")
			if err != nil {
				b.Fatal(err)
			}
			p, err := l.Client.StartProber(vip4, time.Millisecond, 3000)
			if err != nil {
				b.Fatal(err)
			}
			masters := strings.Count(x2.Output(), "Entering MASTER STATE")
			time.Sleep(100 * time.Millisecond)
			h1.Cut()
			for strings.Count(x2.Output(), "Entering MASTER STATE") == masters {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			p.Stop()
			frames, err := capture.Stop()
			if err != nil {
				b.Fatal(err)
			}
			var lastAdvert, garp time.Time
			for _, f := range frames {
				if pkt, err := vrrp.DecodeFrame(f.Data); err == nil {
					if pkt.Src == h1.IPv4.Addr() {
						lastAdvert = f.Time
					}
					continue
				}
				// ARP (ethertype 0x0806) with the VIP as sender, from h2.
				if len(f.Data) >= 42 && f.Data[12] == 0x08 && f.Data[13] == 0x06 &&
					slices.Equal(f.Data[28:32], vip4.AsSlice()) && garp.IsZero() && !lastAdvert.IsZero() {
					garp = f.Time
				}
			}
			var probe time.Time
			for _, a := range p.Answers() {
				if a.From == "h2" && a.Sent.After(lastAdvert) {
					probe = a.Sent
					break
				}
			}
			if lastAdvert.IsZero() || garp.IsZero() || probe.IsZero() {
				b.Fatalf("trial %d: last advert %v, GARP %v, probe %v", trial, lastAdvert, garp, probe)
			}
			expiry := lastAdvert.Add(mdi)
			toGARP = append(toGARP, garp.Sub(expiry))
			toProbe = append(toProbe, probe.Sub(expiry))
			// Back to h1 for the next trial.
			h1.Restore()
			waitFor(b, func() bool { return strings.Count(x2.Output(), "Entering BACKUP STATE\"") > trial })
		}
		report(b, "to-GARP", toGARP)
		report(b, "to-probe", toProbe)
	}
}

func waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// report adds p50, p99 and max of the samples as benchmark metrics, in µs.
func report(b *testing.B, name string, d []time.Duration) {
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	b.ReportMetric(float64(at(0.5).Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(at(0.99).Microseconds()), name+"-p99-µs")
	b.ReportMetric(float64(d[len(d)-1].Microseconds()), name+"-max-µs")
	b.Logf("%s over %d trials: p50 %v p99 %v max %v", name, len(d), at(0.5), at(0.99), d[len(d)-1])
}

// manyConfig is count instances at interval, VRIDs 1…count, one VIP each.
func manyConfig(count, prio int, interval string) string {
	var s strings.Builder
	s.WriteString("global_defs {\n    vrrp_garp_master_delay 0\n}\n")
	for i := 1; i <= count; i++ {
		fmt.Fprintf(&s, `vrrp_instance VI_%d {
    interface eth0
    virtual_router_id %d
    priority %d
    version 3
    advert_int %s
    virtual_ipaddress {
        198.51.100.%d/32
    }
}
`, i, i, prio, interval, i%256)
	}
	return s.String()
}

// BenchmarkBackupWakeups measures the idle cost of 255 instances at 10 ms
// adverts, h1 master of all and h2 backup of all, beside keepalived: the
// `xvrrp bench` cost section (bench.Run), XVRRP_BENCH_RUNS runs (3) alternating
// the implementations, each XVRRP_BENCH_SECONDS long (8; XVRRP_BENCH_INSTANCES
// overrides 255). It reports the medians — the backup's wakeups (voluntary
// context switches over its threads) per second and CPU, the master's CPU —
// for each implementation, and xvrrp's over keepalived's; the cost goals are
// read off them (bench.CostGoals), and logged. XVRRP_BENCH_BIN runs another
// xvrrp binary in place of this tree's (another build, for A/B runs).
func BenchmarkBackupWakeups(b *testing.B) {
	env := func(name string, def, lo, hi int) int {
		if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= lo && n <= hi {
			return n
		}
		return def
	}
	seconds := env("XVRRP_BENCH_SECONDS", 8, 1, 600)
	count := env("XVRRP_BENCH_INSTANCES", 255, 1, bench.MaxCostInstances)
	runs := env("XVRRP_BENCH_RUNS", 3, 1, 20)
	bin := xvrrpBin
	if p := os.Getenv("XVRRP_BENCH_BIN"); p != "" {
		bin = p
	}
	labtest.Require(b)
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		r, err := bench.Run(ctx, bench.Options{XvrrpBin: bin, Impls: []string{bench.Xvrrp, bench.Keepalived},
			Cost: bench.CostOptions{Instances: count, Interval: bench.Interval{Version: 3, Every: 10 * time.Millisecond},
				Duration: time.Duration(seconds) * time.Second, Runs: runs}})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range r.Cost {
			if c.FalseFailovers != 0 {
				b.Errorf("%s run %d: %d transitions while idle", c.Impl, c.Run, c.FalseFailovers)
			}
		}
		sums := r.CostSummaries()
		by := map[string]bench.CostSummary{}
		for _, s := range sums {
			b.ReportMetric(s.BackupWakeups.Median, s.Impl+"-backup-wakeups/s")
			b.ReportMetric(s.BackupCPU.Median, s.Impl+"-backup-cpu-%")
			b.ReportMetric(s.MasterCPU.Median, s.Impl+"-master-cpu-%")
			by[s.Impl] = s
		}
		if x, k := by[bench.Xvrrp], by[bench.Keepalived]; k.Runs > 0 && k.BackupCPU.Median > 0 && k.MasterCPU.Median > 0 {
			b.ReportMetric(x.BackupCPU.Median/k.BackupCPU.Median, "backup-cpu-xvrrp/keepalived")
			b.ReportMetric(x.MasterCPU.Median/k.MasterCPU.Median, "master-cpu-xvrrp/keepalived")
		}
		var text strings.Builder
		if err := r.WriteTable(&text); err != nil {
			b.Fatal(err)
		}
		b.Logf("%d runs of %d s, shared machine:\n%s", runs, seconds, text.String())
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
