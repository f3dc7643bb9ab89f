package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// Faults at the node itself: its own interface taken down, deleted, deleted and
// made again, its adverts refused by its own kernel; a second daemon; a start
// that fails half way; signals. Each acts where the fault happens, on the node.

// ownLinkFault is something done to a node's own eth0, and its undoing.
type ownLinkFault struct {
	name      string
	do, undo  func(*lab.Host) error
	faultLog  string // what the node logs when it happens
	returnLog string // and when it is undone
}

var ownLinkFaults = []ownLinkFault{
	{
		name:      "down",
		do:        func(h *lab.Host) error { return h.SetLinkDown("eth0") },
		undo:      func(h *lab.Host) error { return h.SetLinkUp("eth0") },
		faultLog:  "(VI_1) Entering FAULT STATE",
		returnLog: "(VI_1) interface eth0 up",
	},
	{
		name:      "deleted",
		do:        func(h *lab.Host) error { return h.DeleteLink("eth0") },
		undo:      func(h *lab.Host) error { return h.RecreateLink("eth0") },
		faultLog:  "(VI_1) interface eth0 deleted",
		returnLog: "(VI_1) interface eth0 re-created",
	},
}

// TestOwnInterfaceFaults acts on the master's and on the backup's own
// interface. The master goes to FAULT and the backup takes over; the backup
// goes to FAULT and the master keeps the VIP. The daemon lives through it; when
// the interface is back (up again, or made again with a new index, which the
// datapath and sockets must follow), the node rejoins as VRRP says — the
// master preempts back and answers for the VIP through its new interface — and
// a stop afterwards is clean.
func TestOwnInterfaceFaults(t *testing.T) {
	for _, f := range ownLinkFaults {
		t.Run(f.name+"/master", func(t *testing.T) {
			l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
			h1 := l.Hosts[0]
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			p := probeVIP(t, l, "h1")

			if err := f.do(h1); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			waitLog(t, x1, f.faultLog)
			waitLog(t, x1, "(VI_1) Entering FAULT STATE")
			answeredBy(t, p, "h2")
			alive(t, x1)

			if err := f.undo(h1); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, f.returnLog)
			waitForCount(t, x1.Proc, "(VI_1) Entering MASTER STATE", 2)
			waitLog(t, x2, `(VI_1) Entering BACKUP STATE" from=MASTER`)
			answeredBy(t, p, "h1")
			p.Stop()
			for _, a := range p.Answers() {
				if a.Also != "" {
					t.Errorf("probe at %v answered by %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
				}
			}
			stopClean(t, x1)
		})
		t.Run(f.name+"/backup", func(t *testing.T) {
			l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
			h2 := l.Hosts[1]
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			p := probeVIP(t, l, "h1")

			if err := f.do(h2); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, f.faultLog)
			waitLog(t, x2, "(VI_1) Entering FAULT STATE")
			alive(t, x2)
			if err := f.undo(h2); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, f.returnLog)
			waitLog(t, x2, `(VI_1) Entering BACKUP STATE" from=FAULT`)
			time.Sleep(300 * time.Millisecond) // several Master_Down_Intervals
			p.Stop()
			if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
				t.Errorf("the backup became master %d times:\n%s", n, x2.Output())
			}
			if n := countIn(x1.Proc, "Entering MASTER STATE"); n != 1 {
				t.Errorf("the master changed state:\n%s", x1.Output())
			}
			for _, a := range p.Answers() {
				if a.From != "h1" && a.From != "" {
					t.Errorf("probe at %v answered by %s", a.Sent.Format(time.StampMicro), a.From)
				}
			}
			stopClean(t, x2)
		})
	}
}

// TestSendErrors makes the master's own kernel refuse its adverts (an
// nftables output rule dropping VRRP: the raw socket's send fails with EPERM):
// the daemon lives, counts and logs the error, goes to FAULT and its lease is no
// longer renewed, so the backup takes over and the old master never answers
// beside it. Once the rule is gone it retries and preempts back.
func TestSendErrors(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
	labtest.Require(t, "nft")
	h1 := l.Hosts[0]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")

	ctx := context.Background()
	rules := filepath.Join(l.Dir, "drop-vrrp.nft")
	if err := os.WriteFile(rules, []byte(`table ip xvrrptest {
	chain out {
		type filter hook output priority 0;
		ip protocol 112 drop
	}
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h1.Run(ctx, "nft", "-f", rules); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "send advert to 224.0.0.18")
	waitLog(t, x1, "(VI_1) Entering FAULT STATE")
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	alive(t, x1)
	if !strings.Contains(x1.Output(), "operation not permitted") {
		t.Errorf("the send error is not logged as the kernel gave it:\n%s", lastLines(x1.Output(), 20))
	}

	if _, err := h1.Run(ctx, "nft", "delete", "table", "ip", "xvrrptest"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "retrying adverts after send errors")
	waitForCount(t, x1.Proc, "(VI_1) Entering MASTER STATE", 2)
	answeredBy(t, p, "h1")
	p.Stop()
	for _, a := range p.Answers() {
		if a.Also != "" {
			t.Errorf("probe at %v answered by %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
		}
	}
	stopClean(t, x1)
}

// TestSecondDaemonRefused starts a second daemon on a master's state directory,
// then a third on its pin directory: each is refused at once, naming the first
// one's pid, and changes nothing: the
// first stays master with its VIP and its pid file, and stops cleanly.
func TestSecondDaemonRefused(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	pidFile := filepath.Join(x1.StateDir, "xvrrp.pid")
	before, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}

	x2, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-x2.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the second daemon runs:\n%s", x2.Output())
	}
	if x2.Wait() == nil {
		t.Errorf("the second daemon exited 0:\n%s", x2.Output())
	}
	if want := "is held by pid " + strings.TrimSpace(string(before)); !strings.Contains(x2.Output(), want) {
		t.Errorf("the refusal does not name the holder (%q):\n%s", want, x2.Output())
	}
	if strings.Contains(x2.Output(), "Entering") || strings.Contains(x2.Output(), "adopted") {
		t.Errorf("the second daemon did something:\n%s", x2.Output())
	}
	// The same pin directory with a state directory of its own: refused by
	// the pin directory's lock, naming the holder.
	other := filepath.Join(l.Dir, "other-state")
	conf := filepath.Join(l.Dir, "other.conf")
	if err := os.WriteFile(conf, []byte(nodeConfig(node{prio: 100})), 0o600); err != nil {
		t.Fatal(err)
	}
	x3, err := h1.Start(xvrrpBin, "run", "-f", conf, "--pin-dir", x1.PinDir, "--state-dir", other)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-x3.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon on the same pin directory runs:\n%s", x3.Output())
	}
	if err := x3.Wait(); err == nil || !strings.Contains(x3.Output(), "held by pid "+strings.TrimSpace(string(before))) {
		t.Errorf("a second daemon on the pin directory: %v, want refused naming the holder:\n%s", err, x3.Output())
	}

	time.Sleep(200 * time.Millisecond) // several advert intervals
	after, _ := os.ReadFile(pidFile)
	if string(after) != string(before) {
		t.Errorf("pid file %q, was %q", after, before)
	}
	if !hasVIP(t, h1, vip4) {
		t.Error("the first daemon's VIP is gone")
	}
	if n := countIn(x1.Proc, "Entering"); n != 2 {
		t.Errorf("the first daemon changed state:\n%s", x1.Output())
	}
	stopClean(t, x1)
}

// TestFailedStartRemovesDatapath starts a daemon whose second instance names
// an interface that does not exist. It fails, and leaves no XDP program, no
// fence, no pin and no VIP behind, so a VIP added later by hand is not
// black-holed by a fence nobody renews.
func TestFailedStartRemovesDatapath(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	conf := nodeConfig(node{prio: 150}) + `
vrrp_instance VI_2 {
    interface eth9
    virtual_router_id 52
    priority 100
    version 3
    advert_int 0.05
    virtual_ipaddress {
        192.0.2.2/24
    }
}
`
	x, err := h1.StartXvrrp(xvrrpBin, conf)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-x.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon runs:\n%s", x.Output())
	}
	if x.Wait() == nil || !strings.Contains(x.Output(), "interface eth9") {
		t.Fatalf("want a failed start naming eth9:\n%s", x.Output())
	}
	var ifindex int
	out, err := h1.Run(context.Background(), "cat", "/sys/class/net/eth0/ifindex")
	if err != nil {
		t.Fatal(err)
	}
	ifindex, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	if a := attached(h1, ifindex); strings.Contains(a, "xdp") || strings.Contains(a, "tcx/") || strings.Contains(a, "clsact") {
		t.Errorf("left attached after a failed start:\n%s", a)
	}
	if entries, err := os.ReadDir(x.PinDir); err == nil && len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("pins left in %s: %v", x.PinDir, names)
	}
	if hasVIP(t, h1, vip4) {
		t.Error("VIP left after a failed start")
	}
}

// TestSignals: SIGHUP, keepalived's reload signal, never kills the daemon — on
// an unchanged configuration it changes nothing: no transition, no gap; SIGTERM while
// the configuration is still being read (an include of a FIFO nobody writes)
// stops the daemon; and a clean stop logs no link-update warning.
func TestSignals(t *testing.T) {
	t.Run("hangup", func(t *testing.T) {
		l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
		waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
		p := probeVIP(t, l, "h1")
		for range 3 {
			if err := x1.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Reload exists now (TestReload): SIGHUP reloads an unchanged
		// configuration and kills nothing.
		waitForCount(t, x1.Proc, "configuration reloaded", 3)
		alive(t, x1)
		p.Stop()
		for _, a := range p.Answers() {
			if a.From != "h1" {
				t.Errorf("probe at %v answered by %q across SIGHUP", a.Sent.Format(time.StampMicro), a.From)
			}
		}
		if n := countIn(x2.Proc, "Entering MASTER"); n != 0 {
			t.Errorf("the backup took over across SIGHUP:\n%s", x2.Output())
		}
		stopClean(t, x1)
	})
	t.Run("term while loading", func(t *testing.T) {
		l := labtest.New(t, lab.Options{Hosts: 1})
		fifo := filepath.Join(l.Dir, "include.fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		x, err := l.Hosts[0].StartXvrrp(xvrrpBin, "include "+fifo+"\n"+nodeConfig(node{prio: 150}))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		x.Signal(syscall.SIGTERM)
		select {
		case <-x.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("SIGTERM did not stop a daemon reading its configuration:\n%s", x.Output())
		}
		if strings.Contains(x.Output(), "Entering") {
			t.Errorf("the daemon started instances:\n%s", x.Output())
		}
	})
}

// TestLinkUpdatesSurviveOverflow gives the daemon a link-update socket with
// the smallest receive buffer and floods it with link events, so the kernel
// drops some (ENOBUFS) and the subscription ends. The daemon subscribes again:
// a tracked interface going down afterwards still puts the instance in FAULT.
func TestLinkUpdatesSurviveOverflow(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	ctx := context.Background()
	if _, err := h1.Run(ctx, "ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1"); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"trk0", "trk1"} {
		if _, err := h1.Run(ctx, "ip", "link", "set", dev, "up"); err != nil {
			t.Fatal(err)
		}
	}
	// At nice 0 rather than real-time: a real-time reader may keep up with
	// the flood, and the test must make the socket overflow.
	conf := nodeConfig(node{prio: 150, extra: "    track_interface {\n        trk0\n    }", global: "    vrrp_priority 0\n    max_auto_priority 0"})
	x, err := h1.StartXvrrp(xvrrpBin, conf, "--netlink-rcvbuf", "1")
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")

	// A burst of link events, bounded: 5 rounds of 60 veth pairs made and
	// removed.
	batch := filepath.Join(l.Dir, "flood.batch")
	var b strings.Builder
	for i := range 60 {
		fmt.Fprintf(&b, "link add fl%d type veth peer name fm%d\n", i, i)
	}
	for i := range 60 {
		fmt.Fprintf(&b, "link del fl%d\n", i)
	}
	if err := os.WriteFile(batch, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := h1.Run(ctx, "ip", "-batch", batch); err != nil {
			t.Fatal(err)
		}
	}
	waitLog(t, x, "link updates resubscribed")
	if !strings.Contains(x.Output(), "no buffer space") {
		t.Errorf("no receive overflow was logged; the test did not test:\n%s", lastLines(x.Output(), 20))
	}
	if _, err := h1.Run(ctx, "ip", "link", "set", "trk0", "down"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering FAULT STATE")
	alive(t, x)
	stopClean(t, x)
}

// alive fails the test if the daemon has exited.
func alive(t *testing.T, x *lab.Xvrrp) {
	t.Helper()
	select {
	case <-x.Done():
		t.Fatalf("the daemon died: %v\n%s", x.Wait(), x.Output())
	default:
	}
}

// stopClean stops a daemon with SIGTERM and wants exit 0, no link-update
// warning, and its pin directory gone.
func stopClean(t *testing.T, x *lab.Xvrrp) {
	t.Helper()
	before := len(x.Output())
	if err := x.Stop(10 * time.Second); err != nil {
		t.Errorf("stop: %v\n%s", err, lastLines(x.Output(), 30))
	}
	out := x.Output()[before:]
	if i := strings.Index(out, "level=WARN msg=\"link updates\""); i >= 0 {
		t.Errorf("link-update warning:\n%s", out[i:])
	}
	if _, err := os.Stat(x.PinDir); err == nil {
		t.Errorf("pin directory %s left after a clean stop", x.PinDir)
	}
}
