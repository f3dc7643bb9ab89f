package tests

import (
	"fmt"
	"os"
	"path/filepath"
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

// BenchmarkBackupWakeups runs 255 instances at 10 ms adverts, h1 master of all,
// h2 backup of all, for 30 s (XVRRP_BENCH_SECONDS overrides), and reports the
// backup's CPU and voluntary context switches (its wakeups) per second, and the
// master's CPU.
func BenchmarkBackupWakeups(b *testing.B) {
	seconds := 30
	if s, err := strconv.Atoi(os.Getenv("XVRRP_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	count := 255
	if n, err := strconv.Atoi(os.Getenv("XVRRP_BENCH_INSTANCES")); err == nil && n > 0 && n <= 255 {
		count = n
	}
	for b.Loop() {
		l := labtest.New(b, lab.Options{Hosts: 2})
		h1, h2 := l.Hosts[0], l.Hosts[1]
		x1, err := h1.StartXvrrp(xvrrpBin, manyConfig(count, 150, "0.01"))
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool { return strings.Count(x1.Output(), "Entering MASTER STATE") == count })
		x2, err := h2.StartXvrrp(xvrrpBin, manyConfig(count, 100, "0.01"))
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool { return strings.Count(x2.Output(), "Entering BACKUP STATE (init)") == count })
		time.Sleep(2 * time.Second)
		pid1, pid2 := daemonPID(b, x1), daemonPID(b, x2)
		cpu1, sw1 := bench.ProcStats(pid1)
		cpu2, sw2 := bench.ProcStats(pid2)
		time.Sleep(time.Duration(seconds) * time.Second)
		cpu1b, sw1b := bench.ProcStats(pid1)
		cpu2b, sw2b := bench.ProcStats(pid2)
		if n := strings.Count(x2.Output(), "Entering MASTER STATE"); n != 0 {
			b.Errorf("the backup took over %d instances during the run:\n%s", n, lastLines(x2.Output(), 20))
		}
		secs := float64(seconds)
		b.ReportMetric(float64(sw2b-sw2)/secs, "backup-wakeups/s")
		b.ReportMetric(float64(sw2b-sw2)/secs/float64(count), "backup-wakeups/s/instance")
		b.ReportMetric(100*(cpu2b-cpu2).Seconds()/secs, "backup-cpu-%")
		b.ReportMetric(100*(cpu1b-cpu1).Seconds()/secs, "master-cpu-%")
		b.ReportMetric(float64(sw1b-sw1)/secs, "master-wakeups/s")
	}
}

// daemonPID finds the xvrrp process under nsenter: the state directory's pid file.
func daemonPID(b *testing.B, x *lab.Xvrrp) int {
	data, err := os.ReadFile(filepath.Join(x.StateDir, "xvrrp.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
