package tests

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

var vip4 = netip.MustParseAddr("192.0.2.1")

// node is one instance's settings for nodeConfig.
type node struct {
	prio     int
	interval string // advert_int
	version  int
	extra    string // more lines in the instance
	global   string // lines in global_defs
}

func nodeConfig(n node) string {
	if n.interval == "" {
		n.interval = "0.05"
	}
	if n.version == 0 {
		n.version = 3
	}
	return fmt.Sprintf(`global_defs {
    vrrp_garp_master_delay 0
%s
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    version %d
    advert_int %s
%s
    virtual_ipaddress {
        192.0.2.1/24
    }
}
`, n.global, n.prio, n.version, n.interval, n.extra)
}

// hasVIP reports whether the host has addr configured.
func hasVIP(t *testing.T, h *lab.Host, addr netip.Addr) bool {
	t.Helper()
	found := false
	err := h.Netlink(func(nh *netlink.Handle) error {
		addrs, err := nh.AddrList(nil, netlink.FAMILY_ALL)
		for _, a := range addrs {
			if a.IP.Equal(net.IP(addr.AsSlice())) {
				found = true
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func waitLog(t testing.TB, p interface {
	WaitLog(string, time.Duration) error
}, s string) {
	t.Helper()
	if err := p.WaitLog(s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// countIn counts occurrences of s in the process's output.
func countIn(p *lab.Proc, s string) int { return strings.Count(p.Output(), s) }

// pair starts xvrrp on h1 and h2 of a lab with a client probing the VIP.
func pair(t *testing.T, n1, n2 node) (l *lab.Lab, x1, x2 *lab.Xvrrp) {
	return startPair(t, n1, n2, false)
}

// pairH1First is pair, but h2 starts only once h1 is master.
func pairH1First(t *testing.T, n1, n2 node) (l *lab.Lab, x1, x2 *lab.Xvrrp) {
	return startPair(t, n1, n2, true)
}

func startPair(t *testing.T, n1, n2 node, h1First bool) (l *lab.Lab, x1, x2 *lab.Xvrrp) {
	l = labtest.New(t, lab.Options{Hosts: 2, Client: true})
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if x1, err = l.Hosts[0].StartXvrrp(xvrrpBin, nodeConfig(n1)); err != nil {
		t.Fatal(err)
	}
	if h1First {
		waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	}
	if x2, err = l.Hosts[1].StartXvrrp(xvrrpBin, nodeConfig(n2)); err != nil {
		t.Fatal(err)
	}
	return l, x1, x2
}

// probeVIP starts the client probing the VIP every 5 ms, stopped at the end of
// the test, and waits until host answers.
func probeVIP(t *testing.T, l *lab.Lab, host string) *lab.Prober {
	t.Helper()
	p, err := l.Client.StartProber(vip4, 5*time.Millisecond, 4000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, host)
	return p
}

// answeredBy waits until the client's probes are answered by host name.
func answeredBy(t *testing.T, p *lab.Prober, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Last() != name {
		if time.Now().After(deadline) {
			t.Fatalf("probes not answered by %s (last: %q)", name, p.Last())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Proof 1 and 2: the higher priority is elected and alone holds the VIP; when
// its link is cut, the backup takes over and the client is answered by it.
func TestElectionAndLinkCut(t *testing.T) {
	l, x1, x2 := pair(t, node{prio: 150}, node{prio: 100})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	time.Sleep(300 * time.Millisecond)
	if !hasVIP(t, h1, vip4) || hasVIP(t, h2, vip4) {
		t.Fatalf("VIP on h1: %v, on h2: %v; want only h1", hasVIP(t, h1, vip4), hasVIP(t, h2, vip4))
	}
	// Started together, h2 may finish loading first and be master until it
	// hears h1; it must end as backup.
	if out := x2.Output(); strings.LastIndex(out, "Entering MASTER STATE") > strings.LastIndex(out, "Entering BACKUP STATE") {
		t.Fatalf("h2 is master:\n%s", out)
	}
	masters := countIn(x2.Proc, "Entering MASTER STATE")
	p := probeVIP(t, l, "h1")

	cut := time.Now()
	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	for countIn(x2.Proc, "Entering MASTER STATE") == masters {
		time.Sleep(time.Millisecond)
	}
	answeredBy(t, p, "h2")
	waitLog(t, x1, "(VI_1) Entering FAULT STATE")
	if hasVIP(t, h1, vip4) {
		t.Error("h1 kept the VIP in FAULT")
	}
	outage, err := p.Outage(cut)
	t.Logf("outage after the cut: %v, %v", outage, err)
	for _, a := range p.Answers() {
		if a.Also != "" {
			t.Errorf("probe at %v answered by %s and %s", a.Sent, a.From, a.Also)
		}
	}
}

// Proof 3: a master stopped with SIGTERM sends priority 0 and removes its VIP;
// the backup takes over after about Skew_Time, well before Master_Down_Interval.
func TestGracefulStop(t *testing.T) {
	l, x1, x2 := pair(t, node{prio: 150, interval: "1"}, node{prio: 100, interval: "1"})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	w, err := h2.Capture("ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := x1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	<-x1.Done()
	time.Sleep(100 * time.Millisecond)
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	// On the wire: h1's priority 0, then h2's first advert after about
	// Skew_Time (609 ms for priority 100 at 1 s), not Master_Down_Interval (3.6 s).
	var zeroAt, h2At time.Time
	for _, f := range frames {
		pkt, err := vrrp.DecodeFrame(f.Data)
		if err != nil {
			continue
		}
		switch {
		case pkt.Src == h1.IPv4.Addr() && pkt.Advert.Priority == 0:
			zeroAt = f.Time
		case pkt.Src == h2.IPv4.Addr() && !zeroAt.IsZero() && h2At.IsZero():
			h2At = f.Time
		}
	}
	if zeroAt.IsZero() || h2At.IsZero() {
		t.Fatalf("want h1's priority-0 advert then h2's advert; captured %d frames", len(frames))
	}
	if gap := h2At.Sub(zeroAt); gap > 3*time.Second || gap < 500*time.Millisecond {
		t.Errorf("h2 advertised %v after h1's priority 0; want about Skew_Time (609 ms)", gap)
	}
	if hasVIP(t, h1, vip4) {
		t.Error("h1 left its VIP behind after a clean stop")
	}
	if !hasVIP(t, h2, vip4) {
		t.Error("h2 does not hold the VIP")
	}
	if !strings.Contains(x1.Output(), "(VI_1) Stopped") {
		t.Errorf("h1's log lacks the stop:\n%s", x1.Output())
	}
}

// Proof 4: the old master returns after its link was cut: it preempts, or with
// nopreempt it does not, or with preempt_delay it waits that long first.
func TestReturnOfTheMaster(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
		// h1 must still be backup this long after its link is back, and
		// master again by this much later (0: never).
		holdOff, retakeBy time.Duration
	}{
		{"preempt", "", 0, 5 * time.Second},
		{"nopreempt", "nopreempt", 2 * time.Second, 0},
		{"preempt_delay", "preempt_delay 1.5", time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without preemption the first up is master: let h1 be it.
			l, x1, x2 := pairH1First(t, node{prio: 150, extra: tc.extra}, node{prio: 100})
			h1 := l.Hosts[0]
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
			h1.Cut()
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			waitLog(t, x1, "(VI_1) Entering FAULT STATE")
			h1.Restore()
			waitLog(t, x1, "(VI_1) Entering BACKUP STATE\"")
			if tc.holdOff > 0 {
				time.Sleep(tc.holdOff)
				if n := countIn(x1.Proc, "Entering MASTER STATE"); n != 1 {
					t.Fatalf("h1 took over within %v of its return:\n%s", tc.holdOff, x1.Output())
				}
			}
			if tc.retakeBy == 0 {
				if countIn(x2.Proc, "Entering BACKUP STATE\"") != 0 || !hasVIP(t, l.Hosts[1], vip4) {
					t.Errorf("h2 gave up mastership to a nopreempt h1:\n%s", x2.Output())
				}
				return
			}
			deadline := time.Now().Add(tc.retakeBy)
			for countIn(x1.Proc, "Entering MASTER STATE") < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("h1 did not preempt within %v:\n%s", tc.retakeBy, x1.Output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE\"")
			time.Sleep(200 * time.Millisecond)
			if !hasVIP(t, h1, vip4) || hasVIP(t, l.Hosts[1], vip4) {
				t.Errorf("after preemption, VIP on h1: %v, on h2: %v", hasVIP(t, h1, vip4), hasVIP(t, l.Hosts[1], vip4))
			}
		})
	}
}

// fencedCounts reads a daemon's pinned stats: packets fenced in and out.
func fencedCounts(t *testing.T, pinDir string) (in, out uint64) {
	t.Helper()
	c := counters(t, pinDir)
	return c[loader.CounterFencedIngress], c[loader.CounterFencedEgress]
}

// Proof 6: the master's daemon is SIGKILLed and leaves its VIP configured.
// Nothing renews its lease, so the backup's first advert ends it in h1's
// kernel (or the lease runs out): the old master's fence drops the VIP's
// traffic — the probes sent to its MAC after the takeover — and no probe is
// ever answered by both.
func TestKilledMasterIsFenced(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
	h1 := l.Hosts[0]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	d := directedProbe(t, l)

	if err := x1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-x1.Done()
	killed := time.Now()
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	time.Sleep(300 * time.Millisecond)
	p.Stop()
	d.Stop()
	checkNoneTwice(t, d.Rounds())

	if !hasVIP(t, h1, vip4) {
		t.Fatal("the killed daemon's VIP is gone: the test needs it left behind")
	}
	in, _ := fencedCounts(t, x1.PinDir)
	if in == 0 {
		t.Error("h1's fence dropped nothing after its daemon died")
	}
	var h2First time.Time
	for _, a := range p.Answers() {
		if a.Also != "" {
			t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
		}
		if a.Sent.After(killed) && a.From == "h2" && h2First.IsZero() {
			h2First = a.Sent
		}
		if !h2First.IsZero() && a.Sent.After(h2First) && a.From == "h1" {
			t.Errorf("probe at %v answered by the killed master after the backup took over", a.Sent.Format(time.StampMicro))
		}
	}
	outage, _ := p.Outage(killed.Add(-10 * time.Millisecond))
	t.Logf("outage after SIGKILL: %v; h1 fenced %d packets", outage, in)
}

// A master frozen (SIGSTOP) past its lease wakes still MASTER, while the backup
// has taken over and the client's ARP cache points at the backup. Hearing the
// backup's lower priority, it advertises and sends gratuitous ARPs, as
// keepalived does: the backup steps down and the client follows at once, rather
// than sending to a MAC that no longer answers until its ARP entry goes stale.
func TestFrozenMasterWakes(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100})
	h1 := l.Hosts[0]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	if err := x1.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	capture, err := l.Client.Capture("arp")
	if err != nil {
		t.Fatal(err)
	}
	woke, backups := time.Now(), countIn(x1.Proc, "Entering BACKUP")
	if err := x1.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Received advert from 192.0.2.12 with lower priority 100, ours 150")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
	answeredBy(t, p, "h1")
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	garps := 0
	for _, f := range frames {
		// ARP from h1's MAC announcing the VIP.
		if len(f.Data) >= 42 && bytes.Equal(f.Data[6:12], h1.MAC) && netip.AddrFrom4([4]byte(f.Data[28:32])) == vip4 {
			garps++
		}
	}
	// One burst of garp_lower_prio_repeat (5, keepalived's default): h2
	// steps down on h1's first advert and gives no cause for another, so a
	// burst the fence dropped (a lease not yet renewed) is never made up for,
	// and the client keeps sending to h2 until its ARP entry goes stale.
	if garps < 5 {
		t.Errorf("%d gratuitous ARPs from h1 after it woke, want its burst of 5:\n%s", garps, lastLines(x1.Output(), 15))
	}
	if countIn(x1.Proc, "Entering BACKUP") != backups {
		t.Error("h1 left MASTER: it should have stayed master and made h2 step down")
	}
	gap, _ := p.Outage(woke)
	t.Logf("%d gratuitous ARPs from h1; longest gap after it woke %v", garps, gap)
}

// Proof 8: the master's daemon restarts within its lease (stopped with
// --keep-datapath, started again): the VIP keeps answering from h1 throughout and
// the backup never takes over.
func TestRestartWithinLease(t *testing.T) { restartWithinLease(t, "") }

// restartWithinLease is TestRestartWithinLease with extra lines in both
// nodes' instance; it returns the master's lab host.
func restartWithinLease(t *testing.T, extra string) *lab.Host {
	// At 1 s adverts the lease is about 5 s, ample for a restart.
	n1, n2 := node{prio: 150, interval: "1", extra: extra}, node{prio: 100, interval: "1", extra: extra}
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(n1), "--keep-datapath")
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(n2))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	time.Sleep(500 * time.Millisecond)

	restart := time.Now()
	x1.Signal(syscall.SIGTERM)
	<-x1.Done()
	if !hasVIP(t, h1, vip4) {
		t.Fatalf("--keep-datapath removed the VIP:\n%s", x1.Output())
	}
	x1b, err := h1.StartXvrrp(xvrrpBin, nodeConfig(n1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("h1 before the restart:\n%s\nh1 after:\n%s", x1.Output(), x1b.Output())
		}
	})
	waitLog(t, x1b, "adopting mastership within the previous run's lease")
	waitLog(t, x1b, "(VI_1) Entering MASTER STATE")
	time.Sleep(time.Second)
	p.Stop()

	if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
		t.Errorf("the backup took over during the restart:\n%s", x2.Output())
	}
	for _, a := range p.Answers() {
		if a.Sent.After(restart) && a.From != "h1" {
			t.Errorf("probe at %v during the restart answered by %q, want h1", a.Sent.Format(time.StampMicro), a.From)
		}
	}
	outage, err := p.Outage(restart)
	t.Logf("largest gap across the restart: %v (%v)", outage, err)
	return h1
}

// counters reads a daemon's pinned stats map.
func counters(t *testing.T, pinDir string) []uint64 {
	t.Helper()
	dp, err := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	c, err := dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Accept mode (RFC 5798 6.4.3): a master that is not the address owner and runs
// no_accept answers ARP for its VIP but refuses traffic to it; with accept (the
// default outside vrrp_strict), it serves it.
func TestAcceptMode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		extra  string
		answer bool
	}{
		{"no_accept", "    no_accept", false},
		{"accept", "    accept", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, x1, x2 := pairH1First(t, node{prio: 150, extra: tc.extra}, node{prio: 100, extra: tc.extra})
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			h1 := l.Hosts[0]
			p, err := l.Client.StartProber(vip4, 5*time.Millisecond, 100)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(600 * time.Millisecond)
			p.Stop()
			answered := 0
			for _, a := range p.Answers() {
				if a.From != "" {
					answered++
					if a.From != "h1" || a.Also != "" {
						t.Errorf("probe answered by %q and %q, want h1 only", a.From, a.Also)
					}
				}
			}
			refused := counters(t, x1.PinDir)[loader.CounterNoAccept]
			t.Logf("%d of %d probes answered; h1 refused %d packets as no_accept", answered, len(p.Answers()), refused)
			if tc.answer && answered < len(p.Answers())/2 {
				t.Errorf("accept mode: only %d of %d probes answered", answered, len(p.Answers()))
			}
			if !tc.answer {
				if answered != 0 {
					t.Errorf("no_accept: %d probes answered", answered)
				}
				if refused < uint64(len(p.Answers()))/2 {
					t.Errorf("no_accept: h1 counted %d refused packets for %d probes", refused, len(p.Answers()))
				}
			}
			// Either way the VIP resolves to the master: it answers ARP.
			if got, want := neighbourOf(t, l.Client, vip4), macOf(t, h1); got != want {
				t.Errorf("the client resolves the VIP to %q; h1 is %s", got, want)
			}
		})
	}
}

// neighbourOf is the link-layer address the host has for addr, "" if none.
func neighbourOf(t *testing.T, h *lab.Host, addr netip.Addr) string {
	t.Helper()
	var mac string
	err := h.Netlink(func(nh *netlink.Handle) error {
		neighs, err := nh.NeighList(0, netlink.FAMILY_ALL)
		for _, n := range neighs {
			if n.IP.Equal(net.IP(addr.AsSlice())) {
				mac = n.HardwareAddr.String()
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// macOf is the host's eth0 address.
func macOf(t *testing.T, h *lab.Host) string {
	t.Helper()
	var mac string
	err := h.Netlink(func(nh *netlink.Handle) error {
		l, err := nh.LinkByName("eth0")
		if err == nil {
			mac = l.Attrs().HardwareAddr.String()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// vrrp_startup_delay holds the instances back: h1, the higher priority, sends
// no advert until the delay has passed, then preempts h2.
func TestStartupDelay(t *testing.T) {
	const delay = time.Second
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	capture, err := h2.Capture("vrrp")
	if err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, global: "    vrrp_startup_delay 1"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "delaying startup")
	delaying := time.Now() // a little after the daemon logged it
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, f := range frames {
		if pkt, err := vrrp.DecodeFrame(f.Data); err == nil && pkt.Src == h1.IPv4.Addr() {
			first = f.Time
			break
		}
	}
	if first.IsZero() {
		t.Fatal("no advert from h1 captured")
	}
	if gap := first.Sub(delaying); gap < delay-100*time.Millisecond {
		t.Errorf("h1's first advert came %v after it logged the delay, want about %v", gap, delay)
	} else {
		t.Logf("h1's first advert came %v after it logged the delay", gap)
	}
}
