package tests

import (
	"context"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/tests/lab"
	"github.com/xvrrp/xvrrp/tests/lab/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// TestNoTakeoverUnderLoad runs 50 VRRPv3 instances at 10 ms on a master and a
// backup, then busies every core with loops at nice -20 for a bounded time. A
// host that is merely busy must not lose mastership: the backup takes nothing
// over, the master steps down from nothing, and no gap between two of the
// master's adverts for an instance, as the backup's kernel received them, comes
// near the backup's Master_Down_Interval.
func TestNoTakeoverUnderLoad(t *testing.T) {
	const (
		instances = 50
		interval  = 10 * time.Millisecond
		load      = 6 * time.Second
	)
	l := labtest.New(t, lab.Options{Hosts: 2}, "tcpdump", "chrt", "nice", "timeout")
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
	time.Sleep(500 * time.Millisecond)

	// The capture runs real-time with a large buffer: the load must not make
	// it lose the frames the test judges by. Its timestamps are the kernel's.
	pcap := filepath.Join(l.Dir, "load.pcap")
	capture, err := h2.Start("chrt", "-r", "50", "tcpdump", "-i", "eth0", "-nn", "-B", "65536", "--immediate-mode",
		"-U", "-s", "128", "-Z", "root", "-w", pcap, "ip", "proto", "112", "and", "src", h1.IPv4.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, capture, "listening on")
	masters, backups := countIn(x2.Proc, "Entering MASTER STATE"), countIn(x1.Proc, "Entering BACKUP STATE")

	start := time.Now()
	busy(t, load)
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
	last := map[uint8]time.Time{}
	var gaps []time.Duration
	for _, f := range frames {
		if len(f.Data) < 14+20+2 || binary.BigEndian.Uint16(f.Data[12:14]) != 0x0800 {
			continue
		}
		vrid := f.Data[14+20+1]
		if prev, ok := last[vrid]; ok {
			gaps = append(gaps, f.Time.Sub(prev))
		}
		last[vrid] = f.Time
	}
	if len(gaps) < instances {
		t.Fatalf("captured %d advert gaps over %v of load, too few to judge", len(gaps), loaded)
	}
	slices.Sort(gaps)
	mdi := vrrp.MasterDownInterval(3, 100, interval, 3)
	worst := gaps[len(gaps)-1]
	if worst >= mdi {
		t.Errorf("the master's adverts were %v apart at worst, not below the backup's Master_Down_Interval %v", worst, mdi)
	}
	at := func(q float64) time.Duration { return gaps[int(q*float64(len(gaps)-1))] }
	t.Logf("%d advert gaps under %v of load on %d cores: p50 %v p99 %v p99.9 %v max %v (Master_Down_Interval %v)",
		len(gaps), loaded, runtime.NumCPU(), at(0.5), at(0.99), at(0.999), worst, mdi)
}

// busy runs one loop per core at nice -20 for d, each bounded by timeout(1)
// whatever becomes of this process, and waits for them.
func busy(t *testing.T, d time.Duration) {
	t.Helper()
	var cmds []*exec.Cmd
	for range runtime.NumCPU() {
		cmd := exec.CommandContext(context.Background(), "timeout", "-s", "KILL", fmt.Sprint(d.Seconds()),
			"nice", "-n", "-20", "sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		c.Wait() // killed by timeout: the status is expected
	}
}
