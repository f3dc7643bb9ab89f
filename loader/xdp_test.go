package loader

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

const (
	xdpDrop = 1
	xdpPass = 2
	// prog.Run gives XDP programs the loopback device of the test's namespace.
	loIfindex = 1
)

var (
	src4  = netip.MustParseAddr("192.0.2.12")
	src6  = netip.MustParseAddr("fe80::5eff:fe10:c")
	vip4  = netip.MustParseAddr("192.0.2.1")
	vip6  = netip.MustParseAddr("2001:db8::1")
	vip4b = netip.MustParseAddr("192.0.2.2")
	other = netip.MustParseAddr("192.0.2.99")
	// self is this host's address on the interface, the one its instances
	// send from; hostMAC the interface's MAC, peerMAC the sender's.
	self    = netip.MustParseAddr("192.0.2.11")
	hostMAC = net.HardwareAddr{2, 0, 0x5e, 0x10, 0, 0x0b}
	peerMAC = net.HardwareAddr{2, 0, 0x5e, 0x10, 0, 0x0c}
	group4  = netip.MustParseAddr("224.0.0.99") // vrrp_mcast_group4
	group6  = netip.MustParseAddr("ff02::99")   // vrrp_mcast_group6
)

func newDatapath(tb testing.TB) *Datapath {
	tb.Helper()
	labtest.Require(tb)
	d, err := Load(Options{NoPin: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func key(vrid uint8, family uint8) InstanceKey {
	return InstanceKey{Ifindex: loIfindex, Vrid: vrid, Family: family}
}

// instances the tests configure, in the kernel and as vrrp.Accept for Classify.
type testInstance struct {
	key InstanceKey
	acc vrrp.Accept
}

var testInstances = []testInstance{
	{key(51, FamilyIPv4), vrrp.Accept{Version: 2, MinInterval: time.Second, MaxInterval: time.Second,
		AuthType: vrrp.AuthPass, AuthData: vrrp.Password("secret12")}},
	{key(52, FamilyIPv4), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second}},
	{key(53, FamilyIPv6), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: 40950 * time.Millisecond}},
	{key(54, FamilyIPv4), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		UnicastPeers: []netip.Addr{src4}, Local: self, MAC: hostMAC}},
	{key(55, FamilyIPv4), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		Group: group4, Local: self, MAC: hostMAC}},
	{key(56, FamilyIPv6), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		Group: group6}},
	// v3_checksum_as_v2, over IPv4 and IPv6 (where it changes nothing).
	{key(57, FamilyIPv4), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		ChecksumAsV2: true}},
	{key(57, FamilyIPv6), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		ChecksumAsV2: true}},
	// virtual_ipaddress checked against each advert's addresses.
	{key(59, FamilyIPv4), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		Addrs: []netip.Addr{vip4, vip4b}}},
	{key(59, FamilyIPv6), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: 40950 * time.Millisecond,
		Addrs: []netip.Addr{vip6}}},
	// unicast_peer { 192.0.2.12 min_ttl 250 max_ttl 254  192.0.2.99 }
	{key(58, FamilyIPv4), vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		UnicastPeers: []netip.Addr{src4, other}, PeerTTL: map[netip.Addr]vrrp.TTLRange{src4: {Min: 250, Max: 254}},
		Local: self, MAC: hostMAC}},
}

func configure(t testing.TB, d *Datapath) {
	t.Helper()
	for _, ti := range testInstances {
		in := Instance{
			Version:       ti.acc.Version,
			AuthType:      ti.acc.AuthType,
			AuthData:      ti.acc.AuthData,
			State:         StateBackup,
			MinIntervalCs: uint16(ti.acc.MinInterval / vrrp.IntervalUnitV3),
			MaxIntervalCs: uint16(ti.acc.MaxInterval / vrrp.IntervalUnitV3),
			// prog.Run runs XDP alone: no tc_fence_ingress to hand adverts to.
			Flags: FlagRecordInXDP,
		}
		if ti.acc.ChecksumAsV2 {
			in.Flags |= FlagChecksumAsV2
		}
		in.SetGroup(ti.acc.Group)
		in.SetLocal(ti.acc.Local)
		in.SetMAC(ti.acc.MAC)
		for _, p := range ti.acc.UnicastPeers {
			in.Flags |= FlagUnicast
			r, ok := ti.acc.PeerTTL[p]
			if !ok {
				r = vrrp.AnyTTL
			}
			if err := d.PutUnicastPeer(UnicastKey{Instance: ti.key, Addr: addr16(p)}, UnicastPeer{MinTtl: r.Min, MaxTtl: r.Max}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.PutInstance(ti.key, in); err != nil {
			t.Fatal(err)
		}
		if ti.acc.Addrs != nil {
			k := Key{Ifindex: int(ti.key.Ifindex), VRID: ti.key.Vrid, IPv6: ti.key.Family == FamilyIPv6}
			if err := d.CheckAdvertAddrs(k, nil, ti.acc.Addrs, ti.acc.SkipCheckAdvAddr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func lookup(vrid uint8, ipv6 bool) *vrrp.Accept {
	fam := FamilyIPv4
	if ipv6 {
		fam = FamilyIPv6
	}
	for i := range testInstances {
		if testInstances[i].key.Vrid == vrid && testInstances[i].key.Family == fam {
			return &testInstances[i].acc
		}
	}
	return nil
}

// frame wraps an IP packet in Ethernet from peerMAC, padded to the minimum frame
// size: to the group's MAC when the packet goes to a multicast group, else to
// hostMAC, as a neighbour would send it.
func frame(pkt []byte, ipv6 bool) []byte {
	etype, dst := uint16(0x0800), net.HardwareAddr(hostMAC)
	if ipv6 {
		etype = 0x86dd
		if pkt[24] == 0xff {
			dst = net.HardwareAddr{0x33, 0x33, pkt[36], pkt[37], pkt[38], pkt[39]}
		}
	} else if pkt[16] >= 224 && pkt[16] < 240 {
		dst = net.HardwareAddr{1, 0, 0x5e, pkt[17] & 0x7f, pkt[18], pkt[19]}
	}
	f := append(append(append([]byte(nil), dst...), peerMAC...), byte(etype>>8), byte(etype))
	f = append(f, pkt...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// macs returns a copy of f with the given destination and source MACs.
func macs(f []byte, dst, src net.HardwareAddr) []byte {
	f = append([]byte(nil), f...)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	return f
}

// tagged returns a copy of f with VLAN tags (VID 100, then 200, ...) of the
// given TPIDs inserted after the MACs, outermost first.
func tagged(f []byte, tpids ...uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	for i, tpid := range tpids {
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, uint16(100*(i+1)))
	}
	return append(out, f[12:]...)
}

// ipHeaderSum recomputes the IPv4 header checksum of a frame.
func ipHeaderSum(f []byte) {
	ihl := int(f[14]&0x0f) * 4
	f[24], f[25] = 0, 0
	var sum uint32
	for i := 14; i < 14+ihl; i += 2 {
		sum += uint32(f[i])<<8 | uint32(f[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(f[24:26], ^uint16(sum))
}

// withOptions inserts 4 bytes of IPv4 options (NOPs) into an IPv4 frame,
// fixing its lengths and header checksum.
func withOptions(f []byte) []byte {
	out := append(append(append([]byte(nil), f[:34]...), 1, 1, 1, 1), f[34:]...)
	out[14] = 0x46
	binary.BigEndian.PutUint16(out[16:18], binary.BigEndian.Uint16(out[16:18])+4)
	ipHeaderSum(out)
	return out
}

func advert(t testing.TB, a vrrp.Advert, src, dst netip.Addr, ttl uint8) []byte {
	t.Helper()
	pkt, err := a.AppendPacket(nil, src, dst, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return frame(pkt, src.Is6())
}

func v2() vrrp.Advert {
	return vrrp.Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second,
		AuthType: vrrp.AuthPass, AuthData: vrrp.Password("secret12"), Addrs: []netip.Addr{vip4}}
}

func v3() vrrp.Advert {
	return vrrp.Advert{Version: 3, VRID: 52, Priority: 100, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip4}}
}

func v6() vrrp.Advert {
	return vrrp.Advert{Version: 3, VRID: 53, Priority: 200, Interval: 50 * time.Millisecond, Addrs: []netip.Addr{vip6}}
}

// mutate edits the VRRP message of an IPv4 frame, keeping its checksum right
// unless keepSum.
func mutate(f []byte, edit func(msg []byte), keepSum bool) []byte {
	f = append([]byte(nil), f...)
	msg := f[14+20 : 14+int(binary.BigEndian.Uint16(f[16:18]))]
	edit(msg)
	if !keepSum {
		msg[6], msg[7] = 0, 0
		var sum uint32
		if msg[0]>>4 == 3 {
			for i := 26; i < 34; i += 2 {
				sum += uint32(f[i])<<8 | uint32(f[i+1])
			}
			sum += vrrp.Protocol + uint32(len(msg))
		}
		for i := 0; i+1 < len(msg); i += 2 {
			sum += uint32(msg[i])<<8 | uint32(msg[i+1])
		}
		if len(msg)%2 == 1 {
			sum += uint32(msg[len(msg)-1]) << 8
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(msg[6:8], ^uint16(sum))
	}
	return f
}

// setIPLength sets an IPv4 frame's total length and fixes its header checksum.
func setIPLength(f []byte, length uint16) {
	binary.BigEndian.PutUint16(f[16:18], length)
	ipHeaderSum(f)
}

// trailing appends n bytes to an IPv4 advert's message, fixing the IP header
// and, unless corrupt, the VRRP checksum: the kernel's checksum must cover
// messages of every length, not only multiples of four.
func trailing(f []byte, n int, corrupt bool) []byte {
	f = append(append([]byte(nil), f...), make([]byte, n)...)
	for i := len(f) - n; i < len(f); i++ {
		f[i] = byte(0xa0 + i)
	}
	setIPLength(f, binary.BigEndian.Uint16(f[16:18])+uint16(n))
	f = mutate(f, func([]byte) {}, false)
	if corrupt {
		f[len(f)-1] ^= 0x10
	}
	return f
}

type xdpCase struct {
	name  string
	frame []byte
	want  vrrp.Reason
}

// notVRRP: a frame the kernel does not look at (not VRRP, or tagged).
const notVRRP = vrrp.NumReasons

// xdpCases are frames, each with what xdp_vrrp and vrrp.Classify must both make
// of it: a reason (ReasonValid and ReasonForeign pass, the rest drop), or
// notVRRP.
func xdpCases(t testing.TB) []xdpCase {
	udp := advert(t, v3(), src4, vrrp.Group4, 255)
	udp[14+9] = 17
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	short := advert(t, v3(), src4, vrrp.Group4, 255)
	setIPLength(short, 20+6) // cuts the advert to 6 bytes

	wrongInterval := v3()
	wrongInterval.Interval = 2 * time.Second
	v2Other := v2()
	v2Other.Interval = 2 * time.Second
	noAuth := v2()
	noAuth.AuthType, noAuth.AuthData = vrrp.AuthNone, [8]byte{}
	wrongPass := v2()
	wrongPass.AuthData = vrrp.Password("secret13")
	foreign := v3()
	foreign.VRID = 99
	foreign6 := v6()
	foreign6.VRID = 99
	grouped := v3()
	grouped.VRID = 55
	grouped6 := v6()
	grouped6.VRID = 56
	badHeaderSum := advert(t, v3(), src4, vrrp.Group4, 255)
	badHeaderSum[24] ^= 0x01
	ipVersion5 := advert(t, v3(), src4, vrrp.Group4, 255)
	ipVersion5[14] = 0x55
	ipHeaderSum(ipVersion5)
	// An IPv6 advert in a frame that says IPv4, from a source whose second
	// byte sits where IPv4 keeps the protocol: 112.
	a6 := v6()
	v6in4pkt, err := a6.AppendPacket(nil, netip.MustParseAddr("2070::c"), vrrp.Group6, 255)
	if err != nil {
		t.Fatal(err)
	}
	v6in4 := frame(v6in4pkt, false)
	// An IPv4 advert in a frame that says IPv6; its fragment field holds 112
	// where IPv6 keeps the next header.
	a4 := v3()
	v4in6pkt, err := a4.AppendPacket(nil, src4, vrrp.Group4, 255)
	if err != nil {
		t.Fatal(err)
	}
	v4in6pkt[6] = vrrp.Protocol
	v4in6 := frame(v4in6pkt, true)
	longIHL := advert(t, v3(), src4, vrrp.Group4, 255)
	longIHL[14] = 0x4f // 60 bytes of header: past the end of a 60-byte frame
	optionsBadSum := withOptions(advert(t, v3(), src4, vrrp.Group4, 255))
	optionsBadSum[35] ^= 0x01 // in the options
	otherMAC := net.HardwareAddr{2, 0, 0x5e, 0x10, 0, 0x63}
	group4MAC := net.HardwareAddr{1, 0, 0x5e, 0, 0, 0x63}
	unicast := v3()
	unicast.VRID = 54
	prio0 := v3()
	prio0.Priority = 0
	many := v6()
	for i := 2; i < 200; i++ {
		many.Addrs = append(many.Addrs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}

	asV2 := v3()
	asV2.VRID, asV2.ChecksumAsV2 = 57, true
	asV2Std := v3()
	asV2Std.VRID = 57
	asV2To99 := asV2
	asV2To99.VRID = 99
	asV2v6 := v6()
	asV2v6.VRID, asV2v6.Interval = 57, 100*time.Millisecond
	stdAsV2 := v3()
	stdAsV2.ChecksumAsV2 = true
	ranged := v3()
	ranged.VRID = 58
	addrs := func(vrid uint8, ips ...netip.Addr) vrrp.Advert {
		a := v3()
		if ips[0].Is6() {
			a = v6()
		}
		a.VRID, a.Addrs = vrid, ips
		return a
	}

	return []xdpCase{
		// v3_checksum_as_v2: the instance takes its own form only, a default
		// instance the pseudo-header form only, a foreign VRID either.
		{"as_v2 instance, message-only checksum", advert(t, asV2, src4, vrrp.Group4, 255), vrrp.ReasonValid},
		{"as_v2 instance, pseudo-header checksum", advert(t, asV2Std, src4, vrrp.Group4, 255), vrrp.ReasonChecksum},
		{"default instance, message-only checksum", advert(t, stdAsV2, src4, vrrp.Group4, 255), vrrp.ReasonChecksum},
		{"as_v2 instance, corrupt", mutate(advert(t, asV2, src4, vrrp.Group4, 255), func(m []byte) { m[2]++ }, true), vrrp.ReasonChecksum},
		{"as_v2 instance, IPv6 (pseudo-header always)", advert(t, asV2v6, src6, vrrp.Group6, 255), vrrp.ReasonValid},
		{"foreign VRID, message-only checksum", advert(t, asV2To99, src4, vrrp.Group4, 255), vrrp.ReasonForeign},
		// unicast_peer min_ttl 250 max_ttl 254 for src4; other has no range.
		{"peer TTL 250, its min_ttl", advert(t, ranged, src4, self, 250), vrrp.ReasonValid},
		{"peer TTL 254, its max_ttl", advert(t, ranged, src4, self, 254), vrrp.ReasonValid},
		{"peer TTL 249, below min_ttl", advert(t, ranged, src4, self, 249), vrrp.ReasonTTL},
		{"peer TTL 255, above max_ttl", advert(t, ranged, src4, self, 255), vrrp.ReasonTTL},
		{"peer TTL 64, below min_ttl", advert(t, ranged, src4, self, 64), vrrp.ReasonTTL},
		{"peer without a range, TTL 1", advert(t, ranged, other, self, 1), vrrp.ReasonValid},
		// The addresses an advert carries against virtual_ipaddress.
		{"our addresses", advert(t, addrs(59, vip4, vip4b), src4, vrrp.Group4, 255), vrrp.ReasonValid},
		{"our addresses, another order", advert(t, addrs(59, vip4b, vip4), src4, vrrp.Group4, 255), vrrp.ReasonValid},
		{"one of our addresses missing", advert(t, addrs(59, vip4), src4, vrrp.Group4, 255), vrrp.ReasonAddrCount},
		{"one more address", advert(t, addrs(59, vip4, vip4b, other), src4, vrrp.Group4, 255), vrrp.ReasonAddrCount},
		{"another address for one of ours", advert(t, addrs(59, vip4, other), src4, vrrp.Group4, 255), vrrp.ReasonAddrCount},
		{"our IPv6 address", advert(t, addrs(59, vip6), src6, vrrp.Group6, 255), vrrp.ReasonValid},
		{"another IPv6 address", advert(t, addrs(59, netip.MustParseAddr("2001:db8::2")), src6, vrrp.Group6, 255), vrrp.ReasonAddrCount},

		{"valid v2 IPv4 PASS", advert(t, v2(), src4, vrrp.Group4, 255), vrrp.ReasonValid},
		{"valid v3 IPv4", advert(t, v3(), src4, vrrp.Group4, 255), vrrp.ReasonValid},
		{"valid v3 IPv6", advert(t, v6(), src6, vrrp.Group6, 255), vrrp.ReasonValid},
		{"valid v3 IPv6, 199 addresses", advert(t, many, src6, vrrp.Group6, 255), vrrp.ReasonValid},
		{"valid priority 0", advert(t, prio0, src4, vrrp.Group4, 255), vrrp.ReasonValid},
		{"valid unicast peer", advert(t, unicast, src4, netip.MustParseAddr("192.0.2.11"), 255), vrrp.ReasonValid},
		{"short", short, vrrp.ReasonLength},
		{"bad version", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[0] = 0x41 }, false), vrrp.ReasonVersion},
		{"bad type", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[0] = 0x32 }, false), vrrp.ReasonType},
		{"TTL 254", advert(t, v3(), src4, vrrp.Group4, 254), vrrp.ReasonTTL},
		// keepalived takes a unicast instance's adverts at any TTL.
		{"valid unicast, TTL 64", advert(t, unicast, src4, self, 64), vrrp.ReasonValid},
		{"unicast TTL 1, bad checksum", mutate(advert(t, unicast, src4, self, 1), func(m []byte) { m[2]++ }, true), vrrp.ReasonChecksum},
		{"unicast TTL 64, not a peer", advert(t, unicast, other, self, 64), vrrp.ReasonUnicastPeer},
		{"hop limit 1", advert(t, v6(), src6, vrrp.Group6, 1), vrrp.ReasonTTL},
		{"bad checksum", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[2]++ }, true), vrrp.ReasonChecksum},
		{"1 trailing byte", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 1, false), vrrp.ReasonAddrCount},
		{"2 trailing bytes", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 2, false), vrrp.ReasonAddrCount},
		{"3 trailing bytes", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 3, false), vrrp.ReasonAddrCount},
		{"3 trailing bytes, last corrupt", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 3, true), vrrp.ReasonAddrCount},
		{"2 trailing bytes, last corrupt", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 2, true), vrrp.ReasonAddrCount},
		{"zero addresses", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[3] = 0 }, false), vrrp.ReasonAddrCount},
		{"interval 0", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[4], m[5] = 0, 0 }, false), vrrp.ReasonInterval},
		{"foreign VRID", advert(t, foreign, src4, vrrp.Group4, 255), vrrp.ReasonForeign},
		{"foreign VRID, IPv6", advert(t, foreign6, src6, vrrp.Group6, 255), vrrp.ReasonForeign},
		{"foreign VRID to its own group", advert(t, foreign, src4, group4, 255), vrrp.ReasonForeign},
		{"foreign VRID, bad checksum", mutate(advert(t, foreign, src4, vrrp.Group4, 255), func(m []byte) { m[2]++ }, true), vrrp.ReasonChecksum},
		{"foreign VRID, TTL 1", advert(t, foreign, src4, vrrp.Group4, 1), vrrp.ReasonTTL},
		{"foreign VRID, source 0.0.0.0", advert(t, foreign, netip.IPv4Unspecified(), vrrp.Group4, 255), vrrp.ReasonSource},

		{"802.1Q-tagged advert", tagged(advert(t, v3(), src4, vrrp.Group4, 255), 0x8100), notVRRP},
		{"802.1ad-tagged advert", tagged(advert(t, v3(), src4, vrrp.Group4, 255), 0x88a8), notVRRP},
		{"double-tagged advert", tagged(advert(t, v3(), src4, vrrp.Group4, 255), 0x88a8, 0x8100), notVRRP},
		{"802.1Q-tagged IPv6 advert", tagged(advert(t, v6(), src6, vrrp.Group6, 255), 0x8100), notVRRP},
		{"802.1Q-tagged priority 0", tagged(advert(t, prio0, src4, vrrp.Group4, 255), 0x8100), notVRRP},
		{"802.1Q-tagged bad checksum", tagged(mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[2]++ }, true), 0x8100), notVRRP},

		{"bad IPv4 header checksum", badHeaderSum, vrrp.ReasonIPChecksum},
		{"IPv4 version 5", ipVersion5, vrrp.ReasonIPVersion},
		{"IPv6 header in an IPv4 frame", v6in4, vrrp.ReasonIPVersion},
		{"IPv4 header in an IPv6 frame", v4in6, vrrp.ReasonIPVersion},
		{"IPv4 header length past the frame", longIHL, vrrp.ReasonLength},
		{"valid with IPv4 options", withOptions(advert(t, v3(), src4, vrrp.Group4, 255)), vrrp.ReasonValid},
		{"IPv4 options, bad header checksum", optionsBadSum, vrrp.ReasonIPChecksum},

		{"to 224.0.0.19", advert(t, v3(), src4, netip.MustParseAddr("224.0.0.19"), 255), vrrp.ReasonDestination},
		{"IPv6 to ff02::13", advert(t, v6(), src6, netip.MustParseAddr("ff02::13"), 255), vrrp.ReasonDestination},
		{"valid to vrrp_mcast_group4", advert(t, grouped, src4, group4, 255), vrrp.ReasonValid},
		{"group4 instance, to 224.0.0.18", advert(t, grouped, src4, vrrp.Group4, 255), vrrp.ReasonDestination},
		{"valid to vrrp_mcast_group6", advert(t, grouped6, src6, group6, 255), vrrp.ReasonValid},
		{"group6 instance, to ff02::12", advert(t, grouped6, src6, vrrp.Group6, 255), vrrp.ReasonDestination},
		{"unicast to another host", macs(advert(t, unicast, src4, other, 255), otherMAC, peerMAC), vrrp.ReasonDestination},
		{"unicast to another host's MAC", macs(advert(t, unicast, src4, self, 255), otherMAC, peerMAC), vrrp.ReasonDestination},
		{"unicast instance, to the group", advert(t, unicast, src4, vrrp.Group4, 255), vrrp.ReasonDestination},
		{"unicast instance, to broadcast", advert(t, unicast, src4, netip.MustParseAddr("255.255.255.255"), 255), vrrp.ReasonDestination},

		{"source 0.0.0.0", advert(t, v3(), netip.IPv4Unspecified(), vrrp.Group4, 255), vrrp.ReasonSource},
		{"source 224.0.0.5", advert(t, v3(), netip.MustParseAddr("224.0.0.5"), vrrp.Group4, 255), vrrp.ReasonSource},
		{"source 127.0.0.1", advert(t, v3(), netip.MustParseAddr("127.0.0.1"), vrrp.Group4, 255), vrrp.ReasonSource},
		{"source 255.255.255.255", advert(t, v3(), netip.MustParseAddr("255.255.255.255"), vrrp.Group4, 255), vrrp.ReasonSource},
		{"source 240.0.0.1", advert(t, v3(), netip.MustParseAddr("240.0.0.1"), vrrp.Group4, 255), vrrp.ReasonSource},
		{"IPv6 source ::", advert(t, v6(), netip.IPv6Unspecified(), vrrp.Group6, 255), vrrp.ReasonSource},
		{"IPv6 source ::1", advert(t, v6(), netip.IPv6Loopback(), vrrp.Group6, 255), vrrp.ReasonSource},
		{"IPv6 source ff02::1", advert(t, v6(), netip.MustParseAddr("ff02::1"), vrrp.Group6, 255), vrrp.ReasonSource},
		{"valid IPv6 source ::2", advert(t, v6(), netip.MustParseAddr("::2"), vrrp.Group6, 255), vrrp.ReasonValid},
		{"from our own address", advert(t, grouped, self, group4, 255), vrrp.ReasonOwnSource},
		{"from our own MAC", macs(advert(t, grouped, src4, group4, 255), group4MAC, hostMAC), vrrp.ReasonOwnSource},
		{"unicast from our own address", advert(t, unicast, self, self, 255), vrrp.ReasonOwnSource},
		{"wrong auth type", advert(t, noAuth, src4, vrrp.Group4, 255), vrrp.ReasonAuthType},
		{"wrong password", advert(t, wrongPass, src4, vrrp.Group4, 255), vrrp.ReasonAuthKey},
		{"v2 interval mismatch", advert(t, v2Other, src4, vrrp.Group4, 255), vrrp.ReasonInterval},
		{"interval outside bounds", advert(t, wrongInterval, src4, vrrp.Group4, 255), vrrp.ReasonInterval},
		{"source not a unicast peer", advert(t, unicast, other, netip.MustParseAddr("192.0.2.11"), 255), vrrp.ReasonUnicastPeer},
		{"non-VRRP UDP", udp, notVRRP},
		{"non-VRRP ARP", arp, notVRRP},
	}
}

// TestXDPMatchesDecoder runs the same frames through xdp_vrrp and through
// vrrp.Classify: both judge each frame as the case says, with the same verdict
// and the same counter moving; and every reason has a frame.
func TestXDPMatchesDecoder(t *testing.T) {
	d := newDatapath(t)
	configure(t, d)
	seen := map[vrrp.Reason]bool{}
	for _, tc := range xdpCases(t) {
		seen[tc.want] = true
		t.Run(tc.name, func(t *testing.T) {
			reason, isVRRP := vrrp.Classify(tc.frame, lookup)
			if !isVRRP {
				reason = notVRRP
			}
			if reason != tc.want {
				t.Errorf("Classify: %v, want %v", reason, tc.want)
			}

			before, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			ret, err := d.XDP().Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := d.Counters()
			want := uint32(xdpPass)
			if tc.want != notVRRP && !tc.want.Passes() {
				want = xdpDrop
			}
			if ret != want {
				t.Errorf("XDP returned %d, want %d (%v)", ret, want, tc.want)
			}
			for i := range after {
				moved := after[i] - before[i]
				wantMoved := uint64(0)
				if tc.want != notVRRP && i == int(tc.want) {
					wantMoved = 1
				}
				if moved != wantMoved {
					t.Errorf("counter %s moved by %d, want %d (%v)", counterName(i), moved, wantMoved, tc.want)
				}
			}
		})
	}
	for r := range vrrp.NumReasons {
		if !seen[r] {
			t.Errorf("no frame is judged %v", r)
		}
	}
}

func counterName(i int) string {
	if i < int(vrrp.NumReasons) {
		return vrrp.Reason(i).String()
	}
	return map[int]string{CounterFencedIngress: "fenced_ingress", CounterFencedEgress: "fenced_egress", CounterNoAccept: "no_accept", CounterVLANTagged: "vlan_tagged"}[i]
}

// TestXDPPeerAndEvents: a valid advert records the peer with kernel time and
// tells the state machine about a new source; a repeat does not.
func TestXDPPeerAndEvents(t *testing.T) {
	d := newDatapath(t)
	configure(t, d)
	r, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := advert(t, v3(), src4, vrrp.Group4, 255)
	for range 2 {
		if ret, err := d.XDP().Run(&ebpf.RunOptions{Data: f}); err != nil || ret != xdpPass {
			t.Fatalf("run: %d, %v", ret, err)
		}
	}
	p, err := d.Peer(key(52, FamilyIPv4))
	if err != nil {
		t.Fatal(err)
	}
	if p.Priority != 100 || p.IntervalCs != 10 || p.Count != 2 || p.LastSeenNs == 0 || netip.AddrFrom4([4]byte(p.Addr[:4])) != src4 {
		t.Errorf("peer = %+v", p)
	}
	r.SetDeadline(time.Now().Add(time.Second))
	e, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	// The event carries the first advert's kernel time; the peer has the second's.
	if e.Kind != EventNewSource || e.Key.Vrid != 52 || e.Priority != 100 || e.TimeNs == 0 || e.TimeNs > p.LastSeenNs {
		t.Errorf("event = %+v, peer last seen %d", e, p.LastSeenNs)
	}
	r.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if e, err := r.Read(); err == nil {
		t.Errorf("second identical advert raised an event: %+v", e)
	}
}

// TestXDPHandsOverToTC: without FlagRecordInXDP, a valid advert is counted and
// passed but not recorded by XDP: tc_fence_ingress records it (tests/vlan_test.go
// shows it on real interfaces), once it has seen that the frame was not tagged
// out of band.
func TestXDPHandsOverToTC(t *testing.T) {
	d := newDatapath(t)
	k := key(52, FamilyIPv4)
	if err := d.PutInstance(k, Instance{Version: 3, State: StateBackup, MinIntervalCs: 1, MaxIntervalCs: 4095}); err != nil {
		t.Fatal(err)
	}
	before, _ := d.Counters()
	ret, err := d.XDP().Run(&ebpf.RunOptions{Data: advert(t, v3(), src4, vrrp.Group4, 255)})
	if err != nil || ret != xdpPass {
		t.Fatalf("run: %d, %v", ret, err)
	}
	after, _ := d.Counters()
	if after[vrrp.ReasonValid] != before[vrrp.ReasonValid]+1 {
		t.Errorf("valid counter moved by %d, want 1", after[vrrp.ReasonValid]-before[vrrp.ReasonValid])
	}
	if p, err := d.Peer(k); err == nil {
		t.Errorf("XDP recorded the peer itself: %+v", p)
	}
}

// TestXDPSkipCheckAdvAddr: with skip_check_adv_addr a backup checks the
// addresses of a new master's adverts only, not those of the source it last
// accepted; a master checks every advert (keepalived's vrrp_state_backup and
// vrrp_state_master_rx). vrrp.Classify, told the same, agrees at each step.
func TestXDPSkipCheckAdvAddr(t *testing.T) {
	d := newDatapath(t)
	k := key(60, FamilyIPv4)
	acc := vrrp.Accept{Version: 3, MinInterval: 10 * time.Millisecond, MaxInterval: time.Second,
		Addrs: []netip.Addr{vip4}, SkipCheckAdvAddr: true}
	put := func(state uint8) {
		in := Instance{Version: 3, State: state, MinIntervalCs: 1, MaxIntervalCs: 100, Flags: FlagRecordInXDP}
		if err := d.PutInstance(k, in); err != nil {
			t.Fatal(err)
		}
	}
	put(StateBackup)
	if err := d.CheckAdvertAddrs(Key{Ifindex: loIfindex, VRID: 60}, nil, acc.Addrs, true); err != nil {
		t.Fatal(err)
	}
	with := func(ip netip.Addr) vrrp.Advert {
		a := v3()
		a.VRID, a.Addrs = 60, []netip.Addr{ip}
		return a
	}
	for _, step := range []struct {
		name   string
		src    netip.Addr
		advert vrrp.Advert
		master bool
		want   vrrp.Reason
	}{
		{"first master, our address", src4, with(vip4), false, vrrp.ReasonValid},
		{"same master, another address: not checked", src4, with(other), false, vrrp.ReasonValid},
		{"new master, another address", other, with(other), false, vrrp.ReasonAddrCount},
		{"new master, our address", other, with(vip4), false, vrrp.ReasonValid},
		{"as master, the last source with another address", other, with(other), true, vrrp.ReasonAddrCount},
	} {
		if step.master {
			put(StateMaster)
			acc.Master = true
		}
		f := advert(t, step.advert, step.src, vrrp.Group4, 255)
		r, _ := vrrp.Classify(f, func(vrid uint8, ipv6 bool) *vrrp.Accept {
			if vrid == 60 && !ipv6 {
				return &acc
			}
			return nil
		})
		before, _ := d.Counters()
		ret, err := d.XDP().Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := d.Counters()
		got := vrrp.NumReasons
		for i := range vrrp.NumReasons {
			if after[i] != before[i] {
				got = i
			}
		}
		if got != step.want || r != step.want || (ret == xdpPass) != step.want.Passes() {
			t.Errorf("%s: kernel %v (XDP %d), Classify %v; want %v", step.name, got, ret, r, step.want)
		}
		if r == vrrp.ReasonValid {
			acc.LastMaster = step.src
		}
	}
}
