package vrrp

import (
	"net"
	"net/netip"
	"testing"
)

var (
	hostMAC  = net.HardwareAddr{2, 0, 0x5e, 0x10, 0, 0x0b}
	peerMAC  = net.HardwareAddr{2, 0, 0x5e, 0x10, 0, 0x0c}
	groupMAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 0x12}
	peer4    = netip.MustParseAddr("192.0.2.12")
)

// ethFrame wraps pkt in Ethernet from src to dst with the given EtherType.
func ethFrame(dst, src net.HardwareAddr, etype uint16, pkt []byte) []byte {
	f := append(append(append([]byte(nil), dst...), src...), byte(etype>>8), byte(etype))
	return append(f, pkt...)
}

// TestClassifyKernelRules: the rules Classify shares with xdp_vrrp beyond the
// advert's own fields, without a kernel (loader's TestXDPMatchesDecoder holds
// the two together on every frame).
func TestClassifyKernelRules(t *testing.T) {
	multicast := &Accept{Version: 3, MinInterval: IntervalUnitV3, MaxInterval: 4095 * IntervalUnitV3,
		Local: src4, MAC: hostMAC}
	unicast := &Accept{Version: 3, MinInterval: IntervalUnitV3, MaxInterval: 4095 * IntervalUnitV3,
		UnicastPeers: []netip.Addr{peer4}, Local: src4, MAC: hostMAC}
	grouped := &Accept{Version: 3, MinInterval: IntervalUnitV3, MaxInterval: 4095 * IntervalUnitV3,
		Group: netip.MustParseAddr("224.0.0.99")}
	pkt := func(src, dst netip.Addr) []byte { return mustPacket(t, v3Advert4(), src, dst) }
	for _, tc := range []struct {
		name  string
		frame []byte
		acc   *Accept
		want  Reason
		vrrp  bool
	}{
		{"valid", ethFrame(groupMAC, peerMAC, 0x0800, pkt(peer4, Group4)), multicast, ReasonValid, true},
		{"802.1Q tag", ethFrame(groupMAC, peerMAC, 0x8100, append([]byte{0, 100, 8, 0}, pkt(peer4, Group4)...)), multicast, 0, false},
		{"802.1ad tag", ethFrame(groupMAC, peerMAC, 0x88a8, append([]byte{0, 100, 8, 0}, pkt(peer4, Group4)...)), multicast, 0, false},
		{"foreign", ethFrame(groupMAC, peerMAC, 0x0800, pkt(peer4, Group4)), nil, ReasonForeign, true},
		{"to 224.0.0.19", ethFrame(groupMAC, peerMAC, 0x0800, pkt(peer4, netip.MustParseAddr("224.0.0.19"))), multicast, ReasonDestination, true},
		{"configured group", ethFrame(groupMAC, peerMAC, 0x0800, pkt(peer4, netip.MustParseAddr("224.0.0.99"))), grouped, ReasonValid, true},
		{"standard group, group configured", ethFrame(groupMAC, peerMAC, 0x0800, pkt(peer4, Group4)), grouped, ReasonDestination, true},
		{"unicast to us", ethFrame(hostMAC, peerMAC, 0x0800, pkt(peer4, src4)), unicast, ReasonValid, true},
		{"unicast to another MAC", ethFrame(peerMAC, peerMAC, 0x0800, pkt(peer4, src4)), unicast, ReasonDestination, true},
		{"source 0.0.0.0", ethFrame(groupMAC, peerMAC, 0x0800, pkt(netip.IPv4Unspecified(), Group4)), multicast, ReasonSource, true},
		{"source 224.0.0.5", ethFrame(groupMAC, peerMAC, 0x0800, pkt(netip.MustParseAddr("224.0.0.5"), Group4)), multicast, ReasonSource, true},
		{"from our address", ethFrame(groupMAC, peerMAC, 0x0800, pkt(src4, Group4)), multicast, ReasonOwnSource, true},
		{"from our MAC", ethFrame(groupMAC, hostMAC, 0x0800, pkt(peer4, Group4)), multicast, ReasonOwnSource, true},
		{"IPv6 in an IPv4 frame", ethFrame(groupMAC, peerMAC, 0x0800,
			mustPacket(t, v3Advert6(), netip.MustParseAddr("2070::1"), Group6)), multicast, ReasonIPVersion, true},
		{"IPv4 header checksum", ethFrame(groupMAC, peerMAC, 0x0800, func() []byte {
			p := pkt(peer4, Group4)
			p[10] ^= 1
			return p
		}()), multicast, ReasonIPChecksum, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, isVRRP := Classify(tc.frame, func(uint8, bool) *Accept { return tc.acc })
			if isVRRP != tc.vrrp || isVRRP && got != tc.want {
				t.Errorf("Classify = %v, %v; want %v, %v", got, isVRRP, tc.want, tc.vrrp)
			}
		})
	}
}

// FuzzClassify: Classify never panics and always names a reason it has.
func FuzzClassify(f *testing.F) {
	f.Add(ethFrame(groupMAC, peerMAC, 0x0800, mustPacket(f, v3Advert4(), peer4, Group4)))
	f.Add(ethFrame(groupMAC, peerMAC, 0x86dd, mustPacket(f, v3Advert6(), src6, Group6)))
	f.Add(ethFrame(groupMAC, peerMAC, 0x0800, mustPacket(f, v2Advert(), peer4, Group4)))
	acc := &Accept{Version: 3, MinInterval: IntervalUnitV3, MaxInterval: 4095 * IntervalUnitV3,
		UnicastPeers: []netip.Addr{peer4}, Local: src4, MAC: hostMAC}
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, a := range []*Accept{nil, acc} {
			if r, _ := Classify(frame, func(uint8, bool) *Accept { return a }); r >= NumReasons {
				t.Fatalf("reason %d out of range", r)
			}
		}
	})
}
