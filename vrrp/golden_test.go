package vrrp_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/vrrp"
)

// The golden vectors are adverts real keepalived 2.2.7 sent in a lab
// (tests.TestKeepalivedGolden captures them; run it with -update to rewrite).
func TestGoldenKeepalived(t *testing.T) {
	frames, err := lab.ReadPcapFile("testdata/keepalived-2.2.7.pcap")
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	v4, ll := ip("192.0.2.11"), ip("fe80::5eff:fe10:b")
	v2 := func(prio uint8) vrrp.Packet {
		return vrrp.Packet{Src: v4, Dst: vrrp.Group4, TTL: 255, Advert: vrrp.Advert{
			Version: 2, VRID: 51, Priority: prio, Interval: time.Second,
			AuthType: vrrp.AuthPass, AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1', '2'},
			Addrs: []netip.Addr{ip("192.0.2.1")}}}
	}
	v3 := func(prio uint8) vrrp.Packet {
		return vrrp.Packet{Src: v4, Dst: vrrp.Group4, TTL: 255, Advert: vrrp.Advert{
			Version: 3, VRID: 52, Priority: prio, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{ip("192.0.2.2"), ip("192.0.2.3")}}}
	}
	v6 := func(prio uint8) vrrp.Packet {
		return vrrp.Packet{Src: ll, Dst: vrrp.Group6, TTL: 255, Advert: vrrp.Advert{
			Version: 3, VRID: 53, Priority: prio, Interval: 50 * time.Millisecond,
			Addrs: []netip.Addr{ip("2001:db8::1"), ip("2001:db8::2")}}}
	}
	want := map[[2]uint8]vrrp.Packet{
		{51, 255}: v2(255), {51, 0}: v2(0),
		{52, 100}: v3(100), {52, 0}: v3(0),
		{53, 200}: v6(200), {53, 0}: v6(0),
	}
	if len(frames) != len(want) {
		t.Fatalf("%d golden frames, want %d", len(frames), len(want))
	}
	for _, fr := range frames {
		p, err := vrrp.DecodeFrame(fr.Data)
		if err != nil {
			t.Fatalf("decode %x: %v", fr.Data, err)
		}
		w, ok := want[[2]uint8{p.VRID, p.Priority}]
		if !ok {
			t.Fatalf("unexpected advert VRID %d priority %d", p.VRID, p.Priority)
		}
		if diff := cmp.Diff(w, *p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("VRID %d priority %d (-want +got):\n%s", p.VRID, p.Priority, diff)
		}
		// Byte-exact: the message we build is the one keepalived sent.
		ipLen := 20
		if p.Src.Is6() {
			ipLen = 40
		}
		msg, err := p.Advert.Marshal(p.Src, p.Dst)
		if err != nil {
			t.Fatal(err)
		}
		if wire := fr.Data[14+ipLen:]; !bytes.Equal(wire[:len(msg)], msg) || len(bytes.TrimRight(wire[len(msg):], "\x00")) != 0 {
			t.Errorf("VRID %d priority %d re-encodes differently:\nwire %x\nours %x", p.VRID, p.Priority, wire, msg)
		}
		// And the whole IP packet, but for the IP ID and flow label the kernel picks.
		pkt, err := p.Advert.AppendPacket(nil, p.Src, p.Dst, p.TTL)
		if err != nil {
			t.Fatal(err)
		}
		wire := bytes.Clone(fr.Data[14 : 14+len(pkt)])
		if p.Src.Is4() {
			copy(wire[4:6], pkt[4:6])     // identification
			copy(wire[10:12], pkt[10:12]) // header checksum covers the ID
		} else {
			copy(wire[1:4], pkt[1:4]) // flow label
		}
		if !bytes.Equal(wire, pkt) {
			t.Errorf("VRID %d priority %d IP packet differs:\nwire %x\nours %x", p.VRID, p.Priority, wire, pkt)
		}
	}
}
