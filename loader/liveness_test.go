package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
)

const xdpTx = 3

func probeFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, vrid, typ uint8, nonce uint64) []byte {
	f := append(append(append([]byte(nil), dstMAC...), srcMAC...), 0x08, 0x00)
	return append(f, ProbePacket(src, dst, vrid, typ, nonce)...)
}

func probeNonce(f []byte) uint64 { return binary.NativeEndian.Uint64(f[14+20+8+8:]) }

func counters(t *testing.T, d *Datapath) []uint64 {
	t.Helper()
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLivenessMasterAnswers: a master with fast_liveness answers a probe to
// its MAC and address from XDP (XDP_TX, addresses swapped, type REPLY, the
// nonce echoed) while MASTER with a running lease, and drops it, counted by
// reason, otherwise.
func TestLivenessMasterAnswers(t *testing.T) {
	d := newDatapath(t)
	k := key(60, FamilyIPv4)
	now := monotonicNow(t)
	probe := probeFrame(hostMAC, peerMAC, src4, self, 60, ProbeTypeProbe, 0x1122334455667788)
	for _, tc := range []struct {
		name    string
		state   uint8
		flags   uint32
		lease   uint64
		frame   []byte
		want    uint32
		counter int
	}{
		{"master with a lease", StateMaster, FlagLiveness, now + uint64(time.Hour), probe, xdpTx, CounterLivenessAnswered},
		{"lease run out", StateMaster, FlagLiveness, now - 1, probe, xdpDrop, CounterLivenessNoLease},
		{"backup", StateBackup, FlagLiveness, now + uint64(time.Hour), probe, xdpDrop, CounterLivenessNoLease},
		{"no fast_liveness", StateMaster, 0, now + uint64(time.Hour), probe, xdpDrop, CounterLivenessOff},
		{"to another MAC", StateMaster, FlagLiveness, now + uint64(time.Hour),
			probeFrame(peerMAC, peerMAC, src4, self, 60, ProbeTypeProbe, 1), xdpDrop, CounterLivenessDestination},
		{"to another address", StateMaster, FlagLiveness, now + uint64(time.Hour),
			probeFrame(hostMAC, peerMAC, src4, other, 60, ProbeTypeProbe, 1), xdpDrop, CounterLivenessDestination},
		{"another VRID", StateMaster, FlagLiveness, now + uint64(time.Hour),
			probeFrame(hostMAC, peerMAC, src4, self, 61, ProbeTypeProbe, 1), xdpDrop, CounterLivenessOff},
		{"TTL 64", StateMaster, FlagLiveness, now + uint64(time.Hour),
			func() []byte {
				f := bytes.Clone(probe)
				f[14+8] = 64
				f[14+10], f[14+11] = 0, 0
				binary.BigEndian.PutUint16(f[14+10:], ipChecksum(f[14:34]))
				return f
			}(), xdpDrop, CounterLivenessMalformed},
		{"bad IP checksum", StateMaster, FlagLiveness, now + uint64(time.Hour),
			func() []byte { f := bytes.Clone(probe); f[14+10] ^= 1; return f }(), xdpDrop, CounterLivenessMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Instance{Version: 3, State: tc.state, Priority: 100, MinIntervalCs: 1, MaxIntervalCs: 4095,
				Flags: tc.flags, LeaseUntilNs: tc.lease}
			in.SetLocal(self)
			in.SetMAC(hostMAC)
			if err := d.PutInstance(k, in); err != nil {
				t.Fatal(err)
			}
			before := counters(t, d)
			out := make([]byte, len(tc.frame))
			ret, err := d.XDP().Run(&ebpf.RunOptions{Data: tc.frame, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			if ret != tc.want {
				t.Fatalf("verdict %d, want %d", ret, tc.want)
			}
			if got := counters(t, d)[tc.counter] - before[tc.counter]; got != 1 {
				t.Errorf("counter %s moved by %d, want 1", CounterNames[tc.counter], got)
			}
			if ret != xdpTx {
				return
			}
			want := probeFrame(peerMAC, hostMAC, self, src4, 60, ProbeTypeReply, 0x1122334455667788)
			if !bytes.Equal(out, want) {
				t.Errorf("reply\n%x, want\n%x", out, want)
			}
		})
	}
}

// TestLivenessBackupCountsReplies: a backup's tc egress stamps each probe to
// the master its adverts came from with a fresh nonce; XDP takes a reply only
// from that master's MAC and address echoing an outstanding nonce, once;
// anything else is counted by reason and dropped. A reply arms the miss timer,
// which raises LIVENESS_LOST once multiplier probes went unanswered — and not
// while no probe leaves (a stalled prober).
func TestLivenessBackupCountsReplies(t *testing.T) {
	d := newDatapath(t)
	k := key(52, FamilyIPv4)
	in := Instance{Version: 3, State: StateBackup, Priority: 100, MinIntervalCs: 1, MaxIntervalCs: 4095,
		Flags: FlagRecordInXDP | FlagLiveness}
	in.SetLocal(self)
	in.SetMAC(hostMAC)
	if err := d.PutInstance(k, in); err != nil {
		t.Fatal(err)
	}
	const interval = 2 * time.Millisecond
	if err := d.SetLiveness(keyOf(k), LivenessSpec{Interval: interval, Multiplier: 3, Timeout: 3 * interval}); err != nil {
		t.Fatal(err)
	}
	// The master's advert: from src4 and peerMAC.
	if ret, err := d.XDP().Run(&ebpf.RunOptions{Data: advert(t, v3(), src4, vrrp.Group4, 255)}); err != nil || ret != xdpPass {
		t.Fatalf("advert: %d, %v", ret, err)
	}
	lv, err := d.LivenessOf(keyOf(k))
	if err != nil || lv.Master != src4 || !bytes.Equal(lv.MAC, peerMAC) || lv.Armed {
		t.Fatalf("after the advert: %+v, %v; want master %v at %v, unarmed", lv, err, src4, peerMAC)
	}
	send := func() uint64 {
		t.Helper()
		f := probeFrame(peerMAC, hostMAC, self, src4, 52, ProbeTypeProbe, 0)
		out := make([]byte, len(f))
		if ret, err := d.FenceEgress().Run(&ebpf.RunOptions{Data: f, DataOut: out}); err != nil || ret != tcNext {
			t.Fatalf("egress: %d, %v", ret, err)
		}
		return probeNonce(out)
	}
	reply := func(nonce uint64, srcMAC net.HardwareAddr, src netip.Addr) uint32 {
		t.Helper()
		ret, err := d.XDP().Run(&ebpf.RunOptions{Data: probeFrame(hostMAC, srcMAC, src, self, 52, ProbeTypeReply, nonce)})
		if err != nil {
			t.Fatal(err)
		}
		return ret
	}
	n1 := send()
	if n1 == 0 {
		t.Fatal("egress left the nonce 0")
	}
	n2 := send()
	if n1 == n2 {
		t.Fatalf("two probes carry the same nonce %x", n1)
	}
	other := net.HardwareAddr{2, 0, 0x5e, 0x10, 0, 0x99}
	for _, tc := range []struct {
		name    string
		nonce   uint64
		mac     net.HardwareAddr
		src     netip.Addr
		counter int
	}{
		{"another MAC", n1, other, src4, CounterLivenessForged},
		{"another address", n1, peerMAC, netip.MustParseAddr("192.0.2.99"), CounterLivenessForged},
		{"a nonce never sent", n1 ^ n2 ^ 1, peerMAC, src4, CounterLivenessNonce},
		{"the master, nonce 1", n1, peerMAC, src4, CounterLivenessReply},
		{"the same nonce again", n1, peerMAC, src4, CounterLivenessNonce},
	} {
		before := counters(t, d)
		ret := reply(tc.nonce, tc.mac, tc.src)
		if ret != xdpDrop {
			t.Errorf("%s: verdict %d, want drop (taken or refused, never passed)", tc.name, ret)
		}
		if got := counters(t, d)[tc.counter] - before[tc.counter]; got != 1 {
			t.Errorf("%s: counter %s moved by %d, want 1", tc.name, CounterNames[tc.counter], got)
		}
	}
	lv, _ = d.LivenessOf(keyOf(k))
	if !lv.Armed || lv.Replies != 1 {
		t.Fatalf("after a valid reply: %+v, want armed with 1 reply", lv)
	}

	events, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	lost := func(within time.Duration) bool {
		events.SetDeadline(time.Now().Add(within))
		for {
			e, err := events.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind == EventLivenessLost && e.Key == k {
				return true
			}
		}
	}
	// No probe leaves (the prober stalled): no event, however long.
	if lost(30 * interval) {
		t.Fatal("LIVENESS_LOST with no probe sent: a stalled prober declared the master dead")
	}
	// Fewer than multiplier probes unanswered: no event.
	if reply(n2, peerMAC, src4) != xdpDrop {
		t.Fatal("reply 2 not taken")
	}
	send()
	send()
	if lost(30 * interval) {
		t.Fatal("LIVENESS_LOST after 2 unanswered probes, multiplier 3")
	}
	send()
	if !lost(time.Second) {
		t.Fatal("no LIVENESS_LOST after 3 unanswered probes")
	}
	lv, _ = d.LivenessOf(keyOf(k))
	if lv.Armed || lv.Lost != 1 {
		t.Errorf("after the event: %+v, want disarmed, 1 lost", lv)
	}
}

// BenchmarkLiveness: what a probe costs a master's XDP (the answer), a
// backup's tc egress (the nonce stamped) and XDP (a reply refused for its
// nonce, the same work as one taken less the timer), and other UDP the XDP
// fast path now looks at.
func BenchmarkLiveness(b *testing.B) {
	d := newDatapath(b)
	master, backup := key(60, FamilyIPv4), key(52, FamilyIPv4)
	in := Instance{Version: 3, State: StateMaster, Priority: 150, MinIntervalCs: 1, MaxIntervalCs: 4095,
		Flags: FlagLiveness, LeaseUntilNs: monotonicNow(b) + uint64(time.Hour)}
	in.SetLocal(self)
	in.SetMAC(hostMAC)
	d.PutInstance(master, in)
	in.State, in.Flags = StateBackup, FlagLiveness|FlagRecordInXDP
	d.PutInstance(backup, in)
	d.SetLiveness(keyOf(backup), LivenessSpec{Interval: time.Millisecond, Multiplier: 3, Timeout: 3 * time.Millisecond})
	d.XDP().Run(&ebpf.RunOptions{Data: advert(b, v3(), src4, vrrp.Group4, 255)})
	// BPF_PROG_TEST_RUN repeats on the frame as the last run left it: an
	// answered probe becomes a reply, which the next run drops as
	// unsolicited (no liveness record for VRID 60), and so on. The answer's
	// own cost is 2 × answer-alternating less unsolicited.
	b.Run("answer-alternating", func(b *testing.B) {
		benchRun(b, d.XDP(), probeFrame(hostMAC, peerMAC, src4, self, 60, ProbeTypeProbe, 1), xdpDrop)
	})
	b.Run("unsolicited", func(b *testing.B) {
		benchRun(b, d.XDP(), probeFrame(peerMAC, hostMAC, self, src4, 60, ProbeTypeReply, 1), xdpDrop)
	})
	b.Run("stamp", func(b *testing.B) {
		benchRun(b, d.FenceEgress(), probeFrame(peerMAC, hostMAC, self, src4, 52, ProbeTypeProbe, 0), tcNext)
	})
	b.Run("reply-refused", func(b *testing.B) {
		benchRun(b, d.XDP(), probeFrame(hostMAC, peerMAC, src4, self, 52, ProbeTypeReply, 12345), xdpDrop)
	})
	b.Run("other-udp", func(b *testing.B) {
		benchRun(b, d.XDP(), udpFrame(netip.MustParseAddr("192.0.2.200"), vip4), xdpPass)
	})
}
