package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// fast_liveness end to end: real daemons in namespaces, the kernel's probes
// and replies on veths through a bridge.

const livenessTakeover = `why="master down (fast_liveness)"`

func livenessBlock(interval string, multiplier int) string {
	return fmt.Sprintf("    fast_liveness {\n        interval %s\n        multiplier %d\n    }", interval, multiplier)
}

// datapathOf opens a daemon's pinned maps to read them.
func datapathOf(t *testing.T, pinDir string) *loader.Datapath {
	t.Helper()
	dp, err := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp
}

var vi1 = func(ifindex int) loader.Key { return loader.Key{Ifindex: ifindex, VRID: 51} }

func ifindexOf(t *testing.T, h *lab.Host) int {
	t.Helper()
	var idx int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err == nil {
			idx = ifi.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return idx
}

// waitArmed waits until the backup's kernel has had replies from its master:
// from then on missed replies count.
func waitArmed(t *testing.T, dp *loader.Datapath, k loader.Key) loader.Liveness {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lv, err := dp.LivenessOf(k)
		if err == nil && lv.Armed && lv.Replies >= 10 {
			return lv
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backup's liveness never armed: %+v, %v", lv, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dropReplies makes the switch drop the next n liveness replies from src, and
// returns a function that says how many it dropped so far.
func dropReplies(t *testing.T, l *lab.Lab, src netip.Addr, n int, replyLen uint64) func() uint64 {
	t.Helper()
	ctx := context.Background()
	// quota until B bytes matches while fewer than B bytes went through it:
	// n replies of replyLen bytes, and not one more.
	rule := fmt.Sprintf("add rule bridge lv filt ip saddr %v udp sport %d quota until %d bytes counter drop",
		src, loader.LivenessPort, uint64(n)*replyLen+1)
	if _, err := l.InSwitch(ctx, "nft", rule); err != nil {
		t.Fatal(err)
	}
	return func() uint64 {
		out, err := l.InSwitch(ctx, "nft", "-j", "list", "chain", "bridge", "lv", "filt")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Nftables []struct {
				Rule *struct {
					Handle int `json:"handle"`
					Expr   []map[string]json.RawMessage
				} `json:"rule"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		var dropped uint64
		for _, o := range doc.Nftables {
			if o.Rule == nil {
				continue
			}
			for _, e := range o.Rule.Expr {
				if c, ok := e["counter"]; ok {
					var v struct{ Packets uint64 }
					json.Unmarshal(c, &v)
					dropped = v.Packets
				}
			}
		}
		return dropped
	}
}

// replyLength counts the liveness replies from src crossing the switch for a
// moment and returns their length as nft's quota counts it.
func replyLength(t *testing.T, l *lab.Lab, src netip.Addr) uint64 {
	t.Helper()
	ctx := context.Background()
	for _, cmd := range []string{
		"add table bridge lv",
		"add chain bridge lv filt { type filter hook forward priority 0 ; }",
		fmt.Sprintf("add rule bridge lv filt ip saddr %v udp sport %d counter", src, loader.LivenessPort),
	} {
		if _, err := l.InSwitch(ctx, "nft", cmd); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	out, err := l.InSwitch(ctx, "nft", "list", "chain", "bridge", "lv", "filt")
	if err != nil {
		t.Fatal(err)
	}
	var packets, bytes uint64
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "counter packets "); i >= 0 {
			fmt.Sscanf(line[i:], "counter packets %d bytes %d", &packets, &bytes)
		}
	}
	if packets == 0 {
		t.Fatalf("no liveness reply from %v crossed the switch:\n%s", src, out)
	}
	if _, err := l.InSwitch(ctx, "nft", "flush", "chain", "bridge", "lv", "filt"); err != nil {
		t.Fatal(err)
	}
	return bytes / packets
}

// Liveness takes over after multiplier lost replies, not after one: the
// switch drops one reply of the master's, then later multiplier in a row; the
// backup stays backup through the first and takes over at the second, long
// before Master_Down_Interval (1 s VRRPv2 adverts: 3.6 s).
func TestLivenessTakesOverAfterMultiplierMisses(t *testing.T) {
	labtest.Require(t, "nft")
	const mult = 3
	live := livenessBlock("10ms", mult)
	l, x1, x2 := pairH1First(t, node{prio: 150, version: 2, interval: "1", extra: live},
		node{prio: 100, version: 2, interval: "1", extra: live})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	dp2 := datapathOf(t, x2.PinDir)
	k2 := vi1(ifindexOf(t, h2))
	waitArmed(t, dp2, k2)
	replyLen := replyLength(t, l, h1.IPv4.Addr())

	dropped := dropReplies(t, l, h1.IPv4.Addr(), 1, replyLen)
	deadline := time.Now().Add(5 * time.Second)
	for dropped() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the switch dropped no reply")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // 50 probe intervals
	if got := dropped(); got != 1 {
		t.Fatalf("the switch dropped %d replies, want 1", got)
	}
	if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
		t.Fatalf("one lost reply made the backup take over:\n%s", lastLines(x2.Output(), 10))
	}
	if lv, _ := dp2.LivenessOf(k2); !lv.Armed || lv.Lost != 0 {
		t.Fatalf("after one lost reply: %+v, want armed, nothing lost", lv)
	}

	if _, err := l.InSwitch(context.Background(), "nft", "flush", "chain", "bridge", "lv", "filt"); err != nil {
		t.Fatal(err)
	}
	before, err := dp2.LastAdvert(k2)
	if err != nil {
		t.Fatal(err)
	}
	dropped = dropReplies(t, l, h1.IPv4.Addr(), mult, replyLen)
	waitLog(t, x2, livenessTakeover)
	if got := dropped(); got != mult {
		t.Errorf("the switch dropped %d replies, want %d", got, mult)
	}
	lv, err := dp2.LivenessOf(k2)
	if err != nil || lv.Lost != 1 {
		t.Fatalf("liveness after the takeover: %+v, %v; want one event", lv, err)
	}
	// Before Master_Down_Interval ran out on the master's last advert heard
	// before the drops began (h1 still advertises throughout).
	mdi := vrrp.MasterDownInterval(2, 100, time.Second, 3)
	if lv.LostAt >= before.At+mdi {
		t.Errorf("liveness fired at %v, Master_Down_Interval after the advert of %v ended at %v", lv.LostAt, before.At, before.At+mdi)
	}
	_ = x1
}

// A frozen master (SIGSTOP) keeps answering probes from its kernel while its
// lease runs — it still serves the VIP until then — and stops when the lease
// lapses; the backup takes over from fast_liveness, while Master_Down_Interval
// since the master's last advert (3.6 s at 1 s VRRPv2) has not run out.
func TestLivenessFrozenMaster(t *testing.T) {
	live := livenessBlock("1ms", 3)
	l, x1, x2 := pairH1First(t, node{prio: 150, version: 2, interval: "1", extra: live},
		node{prio: 100, version: 2, interval: "1", extra: live})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	dp1, dp2 := datapathOf(t, x1.PinDir), datapathOf(t, x2.PinDir)
	k1, k2 := vi1(ifindexOf(t, h1)), vi1(ifindexOf(t, h2))
	waitArmed(t, dp2, k2)
	noLease := dp1Counter(t, dp1, loader.CounterLivenessNoLease)

	if err := x1.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x1.Signal(syscall.SIGCONT) })
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	if !strings.Contains(x2.Output(), livenessTakeover) {
		t.Fatalf("the backup took over, but not from fast_liveness:\n%s", lastLines(x2.Output(), 10))
	}
	last, err := dp2.LastAdvert(k2)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := dp2.LivenessOf(k2)
	if err != nil {
		t.Fatal(err)
	}
	st1, err := dp1.State(k1)
	if err != nil {
		t.Fatal(err)
	}
	// The frozen master's kernel answers probes until half an interval
	// after its next renewal was due, or its lease ends, whichever is
	// first; the kernel has since let the lease go on h2's first advert
	// (the stall rule).
	leaseEnd := st1.Renewed + min(vrrp.Lease(2, time.Second, 3), vrrp.LivenessServes(time.Second))
	mdi := vrrp.MasterDownInterval(2, 100, time.Second, 3)
	switch {
	case lv.Lost != 1:
		t.Errorf("liveness events %d, want 1", lv.Lost)
	case lv.LostAt < leaseEnd:
		t.Errorf("the backup declared the master lost at %v, before it stopped serving at %v: the frozen master's kernel answers until then", lv.LostAt, leaseEnd)
	case lv.LostAt >= last.At+mdi:
		t.Errorf("liveness fired at %v, not before Master_Down_Interval ran out at %v", lv.LostAt, last.At+mdi)
	}
	if lv.LastReply > leaseEnd {
		t.Errorf("a reply at %v, after the frozen master stopped serving at %v", lv.LastReply, leaseEnd)
	}
	if got := dp1Counter(t, dp1, loader.CounterLivenessNoLease); got <= noLease {
		t.Error("the frozen master's kernel refused no probe for want of a lease")
	}
	t.Logf("last advert %v, serving until %v (+%v), liveness lost %v (+%v), Master_Down at %v (+%v)",
		last.At, leaseEnd, leaseEnd-last.At, lv.LostAt, lv.LostAt-last.At, last.At+mdi, mdi)
}

func dp1Counter(t *testing.T, dp *loader.Datapath, i int) uint64 {
	t.Helper()
	c, err := dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[i]
}

// Forged replies from a third host on the link — with the master's address,
// with its MAC too, with nonces it never saw — do not hold off the takeover
// when the master's link is cut; the backup counts them by reason.
func TestLivenessForgedReplies(t *testing.T) {
	live := livenessBlock("2ms", 3)
	l := labtest.New(t, lab.Options{Hosts: 3})
	h1, h2, h3 := l.Hosts[0], l.Hosts[1], l.Hosts[2]
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, version: 2, interval: "1", extra: live}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, version: 2, interval: "1", extra: live}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	dp2 := datapathOf(t, x2.PinDir)
	k2 := vi1(ifindexOf(t, h2))
	waitArmed(t, dp2, k2)

	// h3 forges replies to h2 as fast as it can, for at most 10 s or 200,000
	// frames: from its own MAC with h1's address, and from h1's MAC.
	stop := make(chan struct{})
	forged := make(chan error, 1)
	// h1's MAC only once h1 is cut off: before, the bridge would learn it on
	// h3's port and send h1's probes there.
	var spoof atomic.Bool
	go func() {
		forged <- h3.Do(func() error {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ifi, err := net.InterfaceByName(h3.Iface)
			if err != nil {
				return err
			}
			sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
			copy(sa.Addr[:], h2.MAC)
			end := time.Now().Add(10 * time.Second)
			for i := uint64(1); i <= 200000 && time.Now().Before(end); i++ {
				select {
				case <-stop:
					return nil
				default:
				}
				src := h3.MAC
				if i%2 == 0 && spoof.Load() {
					src = h1.MAC
				}
				f := append(append(append([]byte(nil), h2.MAC...), src...), 0x08, 0x00)
				f = append(f, loader.ProbePacket(h1.IPv4.Addr(), h2.IPv4.Addr(), 51, loader.ProbeTypeReply, i*0x9e3779b97f4a7c15)...)
				if err := unix.Sendto(fd, f, 0, sa); err != nil && !errors.Is(err, unix.ENOBUFS) {
					return err
				}
				if i%64 == 0 {
					time.Sleep(time.Millisecond) // ~60,000 frames a second at most
				}
			}
			return nil
		})
	}()
	defer func() {
		close(stop)
		if err := <-forged; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	c0 := dp1Counter(t, dp2, loader.CounterLivenessForged) + dp1Counter(t, dp2, loader.CounterLivenessNonce)
	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	cut := agentNow()
	spoof.Store(true)
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	if !strings.Contains(x2.Output(), livenessTakeover) {
		t.Fatalf("the backup took over, but not from fast_liveness:\n%s", lastLines(x2.Output(), 10))
	}
	lv, err := dp2.LivenessOf(k2)
	if err != nil {
		t.Fatal(err)
	}
	if mdi := vrrp.MasterDownInterval(2, 100, time.Second, 3); lv.LostAt-cut >= mdi {
		t.Errorf("liveness fired %v after the cut, not before Master_Down_Interval (%v)", lv.LostAt-cut, mdi)
	}
	c1 := dp1Counter(t, dp2, loader.CounterLivenessForged) + dp1Counter(t, dp2, loader.CounterLivenessNonce)
	if c1 <= c0 {
		t.Errorf("the backup refused no forged reply after the cut (%d before, %d after)", c0, c1)
	}
	// xvrrp status shows them too, by name.
	if st := status(t, h2, x2); st.Kernel == nil || st.Kernel.Liveness["liveness_forged"] == 0 || st.Kernel.Liveness["liveness_reply"] == 0 {
		t.Errorf("status kernel counters: %+v, want liveness_forged and liveness_reply counted", st.Kernel)
	}
	t.Logf("liveness lost %v after the cut; forged replies refused: %d from another MAC or address, %d with an unknown nonce",
		lv.LostAt-cut, dp1Counter(t, dp2, loader.CounterLivenessForged), dp1Counter(t, dp2, loader.CounterLivenessNonce))
}

func agentNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// fast_liveness on one side only: a master without it never answers, so the
// backup's kernel never arms and it waits Master_Down_Interval as plain VRRP
// does; the other way round, a backup without it sends no probe. Either way
// one master is elected and a killed one is taken over from once.
func TestLivenessOneSideOnly(t *testing.T) {
	live := livenessBlock("1ms", 3)
	for _, tc := range []struct {
		name   string
		n1, n2 node
	}{
		{"backup only", node{prio: 150}, node{prio: 100, extra: live}},
		{"master only", node{prio: 150, extra: live}, node{prio: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, x1, x2 := pairH1First(t, tc.n1, tc.n2)
			h2 := l.Hosts[1]
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			time.Sleep(500 * time.Millisecond) // ten adverts, hundreds of probe intervals
			if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
				t.Fatalf("the backup took over from a live master:\n%s", lastLines(x2.Output(), 10))
			}
			if countIn(x1.Proc, "Entering MASTER STATE") != 1 {
				t.Fatalf("h1 is not master:\n%s", lastLines(x1.Output(), 10))
			}
			if lv, err := datapathOf(t, x2.PinDir).LivenessOf(vi1(ifindexOf(t, h2))); err == nil && lv.Armed {
				t.Errorf("the backup's liveness armed against a master without it: %+v", lv)
			}
			if err := x1.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			if strings.Contains(x2.Output(), livenessTakeover) {
				t.Errorf("the backup took over from fast_liveness with liveness on one side only:\n%s", lastLines(x2.Output(), 10))
			}
			if !strings.Contains(x2.Output(), `why="master down"`) {
				t.Errorf("the backup did not take over on Master_Down:\n%s", lastLines(x2.Output(), 10))
			}
		})
	}
}
