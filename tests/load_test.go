package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

const (
	loadInstances = 50
	loadInterval  = 10 * time.Millisecond
	loadTime      = 6 * time.Second
)

// TestNoTakeoverUnderLoad runs 50 VRRPv3 instances at 10 ms on a master and a
// backup, then busies every core with loops at nice -20 for a bounded time, and
// then holds the host's memory near its limit for as long. A host that is merely busy must
// not lose mastership: the backup takes nothing
// over, the master steps down from nothing, and no gap between two of the
// master's adverts for an instance, as the backup's kernel received them, comes
// near the backup's Master_Down_Interval.
func TestNoTakeoverUnderLoad(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2}, "tcpdump", "chrt", "nice", "timeout")
	h1, h2 := l.Hosts[0], l.Hosts[1]
	x1, err := h1.StartXvrrp(xvrrpBin, manyConfig(loadInstances, 150, "0.01"))
	if err != nil {
		t.Fatal(err)
	}
	waitForCount(t, x1.Proc, "Entering MASTER STATE", loadInstances)
	x2, err := h2.StartXvrrp(xvrrpBin, manyConfig(loadInstances, 100, "0.01"))
	if err != nil {
		t.Fatal(err)
	}
	waitForCount(t, x2.Proc, "Entering BACKUP STATE (init)", loadInstances)

	for _, load := range []struct {
		name string
		run  func() error
	}{
		{"cpu", func() error { return bench.BusyLoops(context.Background(), loadTime) }},
		// The host held near its limit: made smaller with huge pages until
		// 1 GiB is available, then half of that touched, so that the kernel
		// reclaims and tasks wait for memory (bench.MemoryPressure).
		{"memory", func() error {
			load, err := bench.MemoryPressure(context.Background(), loadTime, bench.MemoryFill, bench.MemoryHeadroom)
			t.Logf("memory load: %.1f GiB reserved, %.1f GiB filled, %.2f GiB available at least, %d pages reclaimed, tasks waited on memory %v",
				float64(load.Reserved)/(1<<30), float64(load.Filled)/(1<<30), float64(load.MinAvailable)/(1<<30), load.Reclaimed, load.Stalled)
			if err == nil && load.MinAvailable > bench.MemoryFill+bench.MemoryHeadroom {
				err = fmt.Errorf("the memory load left %.1f GiB available: the host was not near its limit", float64(load.MinAvailable)/(1<<30))
			}
			return err
		}},
	} {
		t.Run(load.name, func(t *testing.T) {
			underLoad(t, l, x1, x2, load.run)
		})
	}
}

// underLoad runs load while capturing the master's adverts on the backup, and
// wants no takeover and no advert gap as long as a Master_Down_Interval.
func underLoad(t *testing.T, l *lab.Lab, x1, x2 *lab.Xvrrp, load func() error) {
	h1, h2 := l.Hosts[0], l.Hosts[1]
	time.Sleep(time.Second) // settled
	// The capture runs real-time with a large buffer: the load must not make
	// it lose the frames the test judges by. Its timestamps are the kernel's.
	pcap := filepath.Join(l.Dir, t.Name()[strings.LastIndex(t.Name(), "/")+1:]+".pcap")
	capture, err := h2.Start("chrt", "-r", "50", "tcpdump", "-i", "eth0", "-nn", "-B", "65536", "--immediate-mode",
		"-U", "-s", "128", "-Z", "root", "-w", pcap, "ip", "proto", "112", "and", "src", h1.IPv4.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, capture, "listening on")
	masters, backups := countIn(x2.Proc, "Entering MASTER STATE"), countIn(x1.Proc, "Entering BACKUP STATE")

	start := time.Now()
	if err := load(); err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	capture.Signal(syscall.SIGINT)
	capture.Wait()

	if n := countIn(x2.Proc, "Entering MASTER STATE") - masters; n != 0 {
		t.Errorf("the backup took over %d times under load:\n%s", n, lastLines(x2.Output(), 20))
	}
	if n := countIn(x1.Proc, "Entering BACKUP STATE") - backups; n != 0 {
		t.Errorf("the master stepped down %d times under load:\n%s", n, lastLines(x1.Output(), 20))
	}
	frames, err := lab.ReadPcapFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	gaps := bench.AdvertGaps(frames)
	if len(gaps) < loadInstances {
		t.Fatalf("captured %d advert gaps over %v of load, too few to judge", len(gaps), loaded)
	}
	mdi := vrrp.MasterDownInterval(3, 100, loadInterval, 3)
	worst := gaps[len(gaps)-1]
	if worst >= mdi {
		t.Errorf("the master's adverts were %v apart at worst, not below the backup's Master_Down_Interval %v", worst, mdi)
	}
	at := func(p float64) time.Duration { return bench.Percentile(gaps, p) }
	t.Logf("%d advert gaps under %v of load on %d cores: p50 %v p99 %v p99.9 %v max %v (Master_Down_Interval %v)",
		len(gaps), loaded, runtime.NumCPU(), at(50), at(99), at(99.9), worst, mdi)
}

// TestNoTakeoverAfterStall stops daemons with SIGSTOP for well over the
// backup's Master_Down_Interval and lets them run again, three times each way.
// The backup alone: the master kept advertising, and the backup, running
// again, finds its adverts in the kernel's record. Both at once, as when the
// whole host stalls (a virtual machine paused, memory faulted in behind a
// lazy hypervisor): nobody advertised, and the backup, which runs again first
// here, knows it was stalled by how late its timer fired and gives the master
// one more interval before judging it (vrrp.StallGrace). Neither may take
// over.
func TestNoTakeoverAfterStall(t *testing.T) {
	const instances, stall = 10, 500 * time.Millisecond
	if mdi := vrrp.MasterDownInterval(3, 100, loadInterval, 3); stall < 10*mdi {
		t.Fatalf("a stall of %v is not well over Master_Down_Interval %v", stall, mdi)
	}
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	x1, err := h1.StartXvrrp(xvrrpBin, manyConfig(instances, 150, "0.01"))
	if err != nil {
		t.Fatal(err)
	}
	waitForCount(t, x1.Proc, "Entering MASTER STATE", instances)
	x2, err := h2.StartXvrrp(xvrrpBin, manyConfig(instances, 100, "0.01"))
	if err != nil {
		t.Fatal(err)
	}
	waitForCount(t, x2.Proc, "Entering BACKUP STATE (init)", instances)

	for _, tc := range []struct {
		name    string
		stopped []*lab.Xvrrp // stopped in this order, continued in the reverse
	}{
		{"backup", []*lab.Xvrrp{x2}},
		{"both", []*lab.Xvrrp{x1, x2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			masters, backups := countIn(x2.Proc, "Entering MASTER STATE"), countIn(x1.Proc, "Entering BACKUP STATE")
			for range 3 {
				time.Sleep(time.Second) // settled
				for _, x := range tc.stopped {
					if err := x.Signal(syscall.SIGSTOP); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(stall)
				for i := len(tc.stopped) - 1; i >= 0; i-- {
					if err := tc.stopped[i].Signal(syscall.SIGCONT); err != nil {
						t.Fatal(err)
					}
				}
			}
			time.Sleep(time.Second) // late transitions
			if n := countIn(x2.Proc, "Entering MASTER STATE") - masters; n != 0 {
				t.Errorf("the backup took over %d times after stalls:\n%s", n, lastLines(x2.Output(), 20))
			}
			if n := countIn(x1.Proc, "Entering BACKUP STATE") - backups; n != 0 {
				t.Errorf("the master stepped down %d times after stalls:\n%s", n, lastLines(x1.Output(), 20))
			}
		})
	}
}
