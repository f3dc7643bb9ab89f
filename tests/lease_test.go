package tests

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

// The lease of a master whose daemon stopped renewing it (killed, frozen) runs
// past every backup's Master_Down_Interval (vrrp.Lease): the old master keeps
// answering until its successor's first advert reaches its kernel, which ends
// the lease then (let_go: not renewed for more than an interval). What the
// client sees, in order, on the wire and in its probes: answered by h1 until
// h2's first advert, by nobody from then until h2's gratuitous ARP reaches the
// client (the takeover itself), by h2 after; and at each node's MAC, h1
// until that advert, never h1 after it, never both but for the round in
// flight as it passes. Before, h1's lease ended about one Skew_Time (61 ms at
// 100 ms adverts) before h2's first advert, and every probe in between went
// unanswered.
func TestStalledMasterAnswersUntilSuccessor(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(sig.String(), func(t *testing.T) {
			l, x1, x2 := pairH1First(t, node{prio: 150, interval: "0.1"}, node{prio: 100, interval: "0.1"})
			h2 := l.Hosts[1]
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			p, d, w := watchTakeover(t, l, "h1")
			broken := time.Now()
			if err := x1.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if sig == syscall.SIGSTOP {
				t.Cleanup(func() { x1.Signal(syscall.SIGCONT) })
			}
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			answeredBy(t, p, "h2")
			time.Sleep(100 * time.Millisecond)
			p.Stop()
			d.Stop()
			frames, err := w.Stop()
			if err != nil {
				t.Fatal(err)
			}
			advert := firstAdvert(frames, h2.IPv4.Addr(), broken)
			garp := firstGARP(frames, h2, broken)
			if advert.IsZero() || garp.IsZero() {
				t.Fatalf("want h2's advert and gratuitous ARP on the wire after the fault; advert %v, ARP %v", advert, garp)
			}
			checkTakeover(t, p.Answers(), broken, advert, garp, "h1", "h2")
			checkDirected(t, d.Rounds(), broken, advert, "h1", "h2")
		})
	}
}

// A master frozen and, at the same moment, cut off from its backup (VRRP
// dropped between them at the switch; the client still reaches both) never
// hears its successor: nothing ends its lease but the lease itself. It answers
// beside the new master for what is left of the lease — the price of the
// double fault, bounded by vrrp.Lease — and then stops by itself, still frozen,
// still cut off: its kernel instance is MASTER with the lease run out (it was
// not let go by an advert), and no directed probe sent after the lease's end
// is answered by it.
func TestFrozenPartitionedMasterStopsAtLease(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150, interval: "0.1"}, node{prio: 100, interval: "0.1"})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	d, err := l.Client.StartDirectedProber(vip4, l.Hosts, time.Millisecond, 3000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	w, err := l.Client.Capture("ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop() })
	time.Sleep(200 * time.Millisecond)

	frozen := time.Now()
	if err := x1.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x1.Signal(syscall.SIGCONT) })
	if err := h1.BlockVRRP(); err != nil {
		t.Fatal(err)
	}
	// The lease h1's frozen daemon last wrote, on the wall clock.
	st := kernelState(t, x1.PinDir)
	if st.State != vrrp.Master {
		t.Fatalf("h1's kernel instance is %v right after the freeze, want MASTER", st.State)
	}
	leaseEnd := time.Now().Add(st.LeaseUntil - agent.Monotonic())
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	time.Sleep(time.Until(leaseEnd) + 200*time.Millisecond)
	d.Stop()
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	advert := firstAdvert(frames, h2.IPv4.Addr(), frozen)
	if advert.IsZero() {
		t.Fatal("h2 never advertised")
	}
	if !advert.Before(leaseEnd) {
		t.Fatalf("h2's first advert at %v, after h1's lease ended at %v: the test tests nothing", advert.Format(time.StampMicro), leaseEnd.Format(time.StampMicro))
	}
	after := kernelState(t, x1.PinDir)
	if after.State != vrrp.Master || after.LeaseUntil != st.LeaseUntil {
		t.Errorf("h1's kernel instance %+v, was %+v: an advert reached it through the partition", after, st)
	}
	h1Last, h1AfterAdvert := time.Time{}, false
	rounds := d.Rounds()
	for i, r := range rounds {
		if slicesContains(r.From, "h1") {
			h1Last = r.Sent
			if r.Sent.After(advert) {
				h1AfterAdvert = true
			}
			// The round sent just before the lease's end may meet it.
			if r.Sent.After(leaseEnd) && !(i > 0 && rounds[i-1].Sent.Before(leaseEnd)) {
				t.Errorf("round at %v answered by the frozen, cut-off h1 after its lease ended at %v", r.Sent.Format(time.StampMicro), leaseEnd.Format(time.StampMicro))
			}
		}
	}
	if h1Last.IsZero() || !h1AfterAdvert {
		t.Errorf("h1 answered no directed probe after h2's first advert (last at %v): the partition did not keep the advert from it", h1Last.Format(time.StampMicro))
	}
	t.Logf("h2's first advert %v, h1's lease end %v, h1's last answer %v",
		advert.Format(time.StampMicro), leaseEnd.Format(time.StampMicro), h1Last.Format(time.StampMicro))
}

// watchTakeover starts the client's probes through its ARP cache and at each
// node's MAC, every millisecond, and a capture of adverts and ARP on its link.
func watchTakeover(t *testing.T, l *lab.Lab, master string) (*lab.Prober, *lab.DirectedProber, *lab.Capture) {
	t.Helper()
	w, err := l.Client.Capture("arp or ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop() })
	p, err := l.Client.StartProber(vip4, time.Millisecond, 5000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, master)
	d, err := l.Client.StartDirectedProber(vip4, l.Hosts, time.Millisecond, 5000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	time.Sleep(100 * time.Millisecond)
	return p, d, w
}

// firstAdvert is when the client saw the first advert of non-zero priority
// from src after since.
func firstAdvert(frames []lab.Frame, src netip.Addr, since time.Time) time.Time {
	for _, f := range frames {
		pkt, err := vrrp.DecodeFrame(f.Data)
		if err == nil && f.Time.After(since) && pkt.Src == src && pkt.Advert.Priority > 0 {
			return f.Time
		}
	}
	return time.Time{}
}

// firstGARP is when the client saw the first ARP from h's MAC announcing the
// VIP after since.
func firstGARP(frames []lab.Frame, h *lab.Host, since time.Time) time.Time {
	for _, f := range frames {
		if len(f.Data) >= 42 && f.Data[12] == 0x08 && f.Data[13] == 0x06 && f.Time.After(since) &&
			bytes.Equal(f.Data[22:28], h.MAC) && netip.AddrFrom4([4]byte(f.Data[28:32])) == vip4 {
			return f.Time
		}
	}
	return time.Time{}
}

// checkTakeover wants the client's probes sent after since answered by from
// up to the one in flight when to's first advert went by, by to from the one
// after to's gratuitous ARP reached the client, and never by from after that
// advert's round, never by both. Between advert and ARP the client still
// sends to from's MAC, which no longer answers: the takeover itself.
func checkTakeover(t *testing.T, answers []lab.Answer, since, advert, garp time.Time, from, to string) {
	t.Helper()
	var before, after []lab.Answer
	for _, a := range answers {
		if a.Sent.Before(since) {
			continue
		}
		if a.Also != "" {
			t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
		}
		switch {
		case a.Sent.Before(advert):
			before = append(before, a)
		default:
			after = append(after, a)
		}
	}
	// Before the advert: all from, but the last, which may meet it.
	for i, a := range before {
		if a.From != from && i < len(before)-1 {
			t.Errorf("probe at %v, before %s's first advert at %v, answered by %q: %s stopped answering before its successor announced itself",
				a.Sent.Format(time.StampMicro), to, advert.Format(time.StampMicro), a.From, from)
		}
	}
	afterARP := 0
	for _, a := range after {
		if a.From == from && a.Sent.After(advert) && len(before) > 0 {
			// The first probe after the advert may have reached from
			// before the advert did.
			if a != after[0] {
				t.Errorf("probe at %v answered by %s after %s's first advert", a.Sent.Format(time.StampMicro), from, to)
			}
		}
		if a.Sent.After(garp) {
			// The probe sent as the ARP arrived may still go to from's MAC.
			if afterARP > 0 && a.From != to {
				t.Errorf("probe at %v, after %s's gratuitous ARP at %v, answered by %q", a.Sent.Format(time.StampMicro), to, garp.Format(time.StampMicro), a.From)
			}
			afterARP++
		}
	}
	if afterARP < 2 {
		t.Fatalf("only %d probes after %s's gratuitous ARP", afterARP, to)
	}
}

// checkDirected wants the rounds of probes at each node's MAC sent after since
// answered by from alone up to the round in flight when to's first advert went
// by, by to alone after the round following it, never by two nodes but for
// those two rounds.
func checkDirected(t *testing.T, rounds []lab.DirectedRound, since, advert time.Time, from, to string) {
	t.Helper()
	last := -1 // the last round sent before the advert
	for i, r := range rounds {
		if r.Sent.Before(advert) {
			last = i
		}
	}
	for i, r := range rounds {
		if r.Sent.Before(since) {
			continue
		}
		in := func(s string) bool { return slicesContains(r.From, s) }
		switch {
		case i < last:
			if !in(from) || len(r.From) != 1 {
				t.Errorf("round at %v, before %s's first advert at %v, answered by %v; want %s alone",
					r.Sent.Format(time.StampMicro), to, advert.Format(time.StampMicro), r.From, from)
			}
		case i > last+1:
			if in(from) || len(r.From) > 1 {
				t.Errorf("round at %v, after %s's first advert at %v, answered by %v; want %s alone",
					r.Sent.Format(time.StampMicro), to, advert.Format(time.StampMicro), r.From, to)
			}
		case len(r.From) > 1:
			t.Logf("round at %v, in flight as %s's first advert went by, answered by %v", r.Sent.Format(time.StampMicro), to, r.From)
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// kernelState reads the one instance in a daemon's pinned instances map.
func kernelState(t *testing.T, pinDir string) loader.InstanceState {
	t.Helper()
	dp, err := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	all, err := dp.Instances()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d kernel instances in %s, want 1", len(all), pinDir)
	}
	for _, st := range all {
		return st
	}
	panic("unreachable")
}

// Make before break, in order: on a graceful stop (SIGTERM: priority 0, then
// the hand-over), a demotion (a tracked file lowers the master below the
// backup, which preempts) and a preemption (a higher priority comes up), the
// outgoing master answers until the incoming master's first advert is on the
// wire, the client goes unanswered only between that advert and the incoming
// master's gratuitous ARP, and at each node's MAC no round of probes is
// answered by both but for the one in flight as the advert passes.
func TestHandoverOrder(t *testing.T) {
	for _, tc := range []string{"graceful", "demotion", "preemption"} {
		t.Run(tc, func(t *testing.T) {
			health := filepath.Join(t.TempDir(), "health")
			if err := os.WriteFile(health, []byte("0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			n1 := node{prio: 150, interval: "0.1", extra: "    track_file {\n        health weight -100\n    }",
				global: "}\nvrrp_track_file health {\n    file " + health}
			n2 := node{prio: 100, interval: "0.1"}
			from, to := "h1", "h2"
			if tc == "preemption" {
				from, to = "h2", "h1"
			}
			l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
			for _, h := range l.Hosts {
				if err := h.StartResponder(); err != nil {
					t.Fatal(err)
				}
			}
			start := func(h *lab.Host, n node) *lab.Xvrrp {
				x, err := h.StartXvrrp(xvrrpBin, nodeConfig(n))
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			var x1, x2 *lab.Xvrrp
			if tc == "preemption" {
				x2 = start(l.Hosts[1], n2)
				waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			} else {
				x1 = start(l.Hosts[0], n1)
				waitLog(t, x1, "(VI_1) Entering MASTER STATE")
				x2 = start(l.Hosts[1], n2)
				waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			}
			p, d, w := watchTakeover(t, l, from)
			since := time.Now()
			var toX *lab.Xvrrp
			switch tc {
			case "graceful":
				if err := x1.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				toX = x2
			case "demotion":
				if err := os.WriteFile(health, []byte("1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				toX = x2
			case "preemption":
				x1 = start(l.Hosts[0], n1)
				toX = x1
			}
			waitLog(t, toX, "(VI_1) Entering MASTER STATE")
			answeredBy(t, p, to)
			time.Sleep(100 * time.Millisecond)
			p.Stop()
			d.Stop()
			frames, err := w.Stop()
			if err != nil {
				t.Fatal(err)
			}
			toHost := l.Host(to)
			advert := firstAdvert(frames, toHost.IPv4.Addr(), since)
			garp := firstGARP(frames, toHost, since)
			if advert.IsZero() || garp.IsZero() {
				t.Fatalf("want %s's advert and gratuitous ARP on the wire; advert %v, ARP %v", to, advert, garp)
			}
			checkTakeover(t, p.Answers(), since, advert, garp, from, to)
			checkDirected(t, d.Rounds(), since, advert, from, to)
		})
	}
}
