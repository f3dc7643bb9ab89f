package loader

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

const (
	// tcNext is "no verdict": TCX_NEXT, and TC_ACT_UNSPEC for cls_bpf, both -1,
	// so that programs and filters after the fence still run.
	tcNext = uint32(0xffffffff)
	tcShot = 2
)

func monotonicNow(t testing.TB) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

func udpFrame(src, dst netip.Addr) []byte {
	a := vrrp.Advert{Version: 3, VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{dst}}
	pkt, _ := a.AppendPacket(nil, src, dst, 64)
	if src.Is4() {
		pkt[9] = 17
	} else {
		pkt[6] = 17
	}
	return frame(pkt, src.Is6())
}

func arpFrame(sender netip.Addr, op uint16) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], []byte{2, 0, 0x5e, 0x10, 0, 0x0b})
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], f[6:12])
	copy(a[14:18], sender.AsSlice())
	copy(a[24:28], sender.AsSlice()) // gratuitous: target = sender
	return f
}

func naFrame(target netip.Addr) []byte {
	return ndFrame(136, target, netip.MustParseAddr("ff02::1"))
}

// ndFrame is a neighbour solicitation (135) or advertisement (136) for target,
// sent to dst.
func ndFrame(typ byte, target, dst netip.Addr) []byte {
	src := netip.MustParseAddr("fe80::5eff:fe10:b")
	icmp := make([]byte, 24)
	icmp[0] = typ
	copy(icmp[8:], target.AsSlice())
	pkt := []byte{0x60, 0, 0, 0, 0, 24, 58, 255}
	pkt = append(pkt, src.AsSlice()...)
	pkt = append(pkt, dst.AsSlice()...)
	pkt = append(pkt, icmp...)
	return frame(pkt, true)
}

// TestFence: VIP traffic passes the fence only while the owning instance is
// MASTER with a lease that has not run out; everything else always passes. A
// master in no_accept mode drops what is delivered to its VIPs, except
// neighbour discovery, and still sends ARP and NAs for them.
func TestFence(t *testing.T) {
	d := newDatapath(t)
	owner4, owner6 := key(51, FamilyIPv4), key(53, FamilyIPv6)
	if err := d.PutVIP(VIPKey{Family: FamilyIPv4, Addr: addr16(vip4)}, owner4); err != nil {
		t.Fatal(err)
	}
	if err := d.PutVIP(VIPKey{Family: FamilyIPv6, Addr: addr16(vip6)}, owner6); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("192.0.2.200")
	client6 := netip.MustParseAddr("2001:db8::200")
	type frameCase struct {
		name    string
		prog    *ebpf.Program
		frame   []byte
		counter int
		isVIP   bool
		deliver bool // delivered to the VIP: refused in no_accept mode
	}
	frames := []frameCase{
		{"IPv4 to the VIP", d.FenceIngress(), udpFrame(client, vip4), CounterFencedIngress, true, true},
		{"IPv4 from the VIP", d.FenceEgress(), udpFrame(vip4, client), CounterFencedEgress, true, false},
		{"IPv6 to the VIP", d.FenceIngress(), udpFrame(client6, vip6), CounterFencedIngress, true, true},
		{"IPv6 from the VIP", d.FenceEgress(), udpFrame(vip6, client6), CounterFencedEgress, true, false},
		{"neighbour solicitation to the VIP", d.FenceIngress(), ndFrame(135, vip6, vip6), CounterFencedIngress, true, false},
		{"gratuitous ARP for the VIP", d.FenceEgress(), arpFrame(vip4, 1), CounterFencedEgress, true, false},
		{"ARP reply for the VIP", d.FenceEgress(), arpFrame(vip4, 2), CounterFencedEgress, true, false},
		{"neighbour advertisement for the VIP", d.FenceEgress(), naFrame(vip6), CounterFencedEgress, true, false},
		{"802.1Q-tagged IPv4 to the VIP", d.FenceIngress(), tagged(udpFrame(client, vip4), 0x8100), CounterFencedIngress, true, true},
		{"802.1ad-tagged IPv4 to the VIP", d.FenceIngress(), tagged(udpFrame(client, vip4), 0x88a8), CounterFencedIngress, true, true},
		{"double-tagged IPv4 to the VIP", d.FenceIngress(), tagged(udpFrame(client, vip4), 0x88a8, 0x8100), CounterFencedIngress, true, true},
		{"double-tagged IPv6 to the VIP", d.FenceIngress(), tagged(udpFrame(client6, vip6), 0x8100, 0x8100), CounterFencedIngress, true, true},
		{"802.1ad-tagged IPv4 from the VIP", d.FenceEgress(), tagged(udpFrame(vip4, client), 0x88a8), CounterFencedEgress, true, false},
		{"double-tagged IPv6 from the VIP", d.FenceEgress(), tagged(udpFrame(vip6, client6), 0x88a8, 0x8100), CounterFencedEgress, true, false},
		{"double-tagged ARP reply for the VIP", d.FenceEgress(), tagged(arpFrame(vip4, 2), 0x88a8, 0x8100), CounterFencedEgress, true, false},
		{"802.1ad-tagged NA for the VIP", d.FenceEgress(), tagged(naFrame(vip6), 0x88a8), CounterFencedEgress, true, false},
		{"other IPv4 traffic", d.FenceIngress(), udpFrame(client, other), 0, false, false},
		{"double-tagged other IPv4 traffic", d.FenceIngress(), tagged(udpFrame(client, other), 0x88a8, 0x8100), 0, false, false},
		{"other ARP", d.FenceEgress(), arpFrame(other, 2), 0, false, false},
		{"other NA", d.FenceEgress(), naFrame(netip.MustParseAddr("2001:db8::99")), 0, false, false},
	}
	now := monotonicNow(t)
	for _, state := range []struct {
		name  string
		state uint8
		lease uint64
		flags uint32
		pass  bool
	}{
		{"MASTER with a lease", StateMaster, now + uint64(time.Hour), 0, true},
		{"no_accept MASTER with a lease", StateMaster, now + uint64(time.Hour), FlagNoAccept, true},
		{"BACKUP", StateBackup, now + uint64(time.Hour), 0, false},
		{"MASTER with an expired lease", StateMaster, now - 1, 0, false},
		{"no_accept MASTER with an expired lease", StateMaster, now - 1, FlagNoAccept, false},
		{"FAULT", StateFault, 0, 0, false},
	} {
		for _, k := range []InstanceKey{owner4, owner6} {
			if err := d.PutInstance(k, Instance{State: state.state, LeaseUntilNs: state.lease, Flags: state.flags}); err != nil {
				t.Fatal(err)
			}
		}
		for _, fc := range frames {
			t.Run(state.name+"/"+fc.name, func(t *testing.T) {
				before, _ := d.Counters()
				ret, err := fc.prog.Run(&ebpf.RunOptions{Data: fc.frame})
				if err != nil {
					t.Fatal(err)
				}
				after, _ := d.Counters()
				counter := -1 // none moves
				switch {
				case !fc.isVIP:
				case !state.pass:
					counter = fc.counter
				case state.flags&FlagNoAccept != 0 && fc.deliver:
					counter = CounterNoAccept
				}
				want := tcNext
				if counter >= 0 {
					want = tcShot
				}
				if ret != want {
					t.Errorf("verdict %d, want %d", ret, want)
				}
				for _, c := range []int{CounterFencedIngress, CounterFencedEgress, CounterNoAccept} {
					wantMoved := uint64(0)
					if c == counter {
						wantMoved = 1
					}
					if moved := after[c] - before[c]; moved != wantMoved {
						t.Errorf("counter %d moved by %d, want %d", c, moved, wantMoved)
					}
				}
			})
		}
	}
}
