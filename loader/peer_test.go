package loader

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
)

// TestPeerReadsAreWhole hammers one peer entry with two adverts whose fields
// all follow from their priority p (interval p centiseconds, source
// 2001:db8:pppp:…) while another goroutine reads the entry: every read must be
// one advert. count tells which one was written last (the first, p1, makes the
// entry with count 1, and they alternate), so it must agree too. Without the
// entry's lock a read mixes the two within a second on two CPUs.
func TestPeerReadsAreWhole(t *testing.T) {
	d := newDatapath(t)
	k := key(53, FamilyIPv6)
	if err := d.PutInstance(k, Instance{Version: 3, State: StateBackup, MinIntervalCs: 1, MaxIntervalCs: 4095,
		Flags: FlagRecordInXDP}); err != nil {
		t.Fatal(err)
	}
	source := func(p uint8) netip.Addr {
		var a [16]byte
		a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
		for i := 4; i < 16; i++ {
			a[i] = p
		}
		return netip.AddrFrom16(a)
	}
	const p1, p2 = 101, 202
	var frames [2][]byte
	for i, p := range []uint8{p1, p2} {
		a := vrrp.Advert{Version: 3, VRID: 53, Priority: p, Interval: time.Duration(p) * vrrp.IntervalUnitV3,
			Addrs: []netip.Addr{vip6}}
		frames[i] = advert(t, a, source(p), vrrp.Group6, 255)
	}

	var stop atomic.Bool
	written := make(chan error, 1)
	go func() {
		defer stop.Store(true)
		// Bounded in count and time: on a busy machine the reader still gets
		// its share of the run.
		deadline := time.Now().Add(3 * time.Second)
		for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
			ret, err := d.XDP().Run(&ebpf.RunOptions{Data: frames[i%2]})
			if err != nil || ret != xdpPass {
				written <- errors.Join(err, errors.New("advert not passed"))
				return
			}
		}
		written <- nil
	}()

	var reads, torn int
	for !stop.Load() {
		p, err := d.Peer(k)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue // not written yet
		}
		if err != nil {
			t.Fatal(err)
		}
		reads++
		want := uint8(p1)
		if p.Count%2 == 0 {
			want = p2
		}
		if p.Priority != want || p.IntervalCs != uint16(want) || netip.AddrFrom16(p.Addr) != source(want) {
			if torn++; torn <= 5 {
				t.Errorf("read %d mixes two adverts: priority %d, interval %d cs, source %v, count %d",
					reads, p.Priority, p.IntervalCs, netip.AddrFrom16(p.Addr), p.Count)
			}
		}
	}
	if err := <-written; err != nil {
		t.Fatalf("write: %v", err)
	}
	if torn > 0 {
		t.Errorf("%d of %d reads mixed two adverts", torn, reads)
	}
	if reads < 1000 {
		t.Errorf("only %d reads while the adverts were written: the test proved nothing", reads)
	}
}
