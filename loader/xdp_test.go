package loader

import (
	"encoding/binary"
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
	other = netip.MustParseAddr("192.0.2.99")
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

func addr16(a netip.Addr) (b [16]uint8) {
	copy(b[:], a.AsSlice())
	return b
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
		UnicastPeers: []netip.Addr{src4}}},
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
		}
		for _, p := range ti.acc.UnicastPeers {
			in.Flags |= FlagUnicast
			if err := d.PutUnicastPeer(UnicastKey{Instance: ti.key, Addr: addr16(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.PutInstance(ti.key, in); err != nil {
			t.Fatal(err)
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

// frame wraps an IP packet in Ethernet, padded to the minimum frame size.
func frame(pkt []byte, ipv6 bool) []byte {
	etype := uint16(0x0800)
	if ipv6 {
		etype = 0x86dd
	}
	f := []byte{1, 0, 0x5e, 0, 0, 0x12, 2, 0, 0x5e, 0x10, 0, 0x0c, byte(etype >> 8), byte(etype)}
	f = append(f, pkt...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
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
	f[24], f[25] = 0, 0
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(f[i])<<8 | uint32(f[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(f[24:26], ^uint16(sum))
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

func xdpCases(t testing.TB) []struct {
	name  string
	frame []byte
} {
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
	unknown := v3()
	unknown.VRID = 99
	unicast := v3()
	unicast.VRID = 54
	prio0 := v3()
	prio0.Priority = 0
	many := v6()
	for i := 2; i < 200; i++ {
		many.Addrs = append(many.Addrs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}

	return []struct {
		name  string
		frame []byte
	}{
		{"valid v2 IPv4 PASS", advert(t, v2(), src4, vrrp.Group4, 255)},
		{"valid v3 IPv4", advert(t, v3(), src4, vrrp.Group4, 255)},
		{"valid v3 IPv6", advert(t, v6(), src6, vrrp.Group6, 255)},
		{"valid v3 IPv6, 199 addresses", advert(t, many, src6, vrrp.Group6, 255)},
		{"valid priority 0", advert(t, prio0, src4, vrrp.Group4, 255)},
		{"valid unicast peer", advert(t, unicast, src4, netip.MustParseAddr("192.0.2.11"), 255)},
		{"short", short},
		{"bad version", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[0] = 0x41 }, false)},
		{"bad type", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[0] = 0x32 }, false)},
		{"TTL 254", advert(t, v3(), src4, vrrp.Group4, 254)},
		{"hop limit 1", advert(t, v6(), src6, vrrp.Group6, 1)},
		{"bad checksum", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[2]++ }, true)},
		{"1 trailing byte", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 1, false)},
		{"2 trailing bytes", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 2, false)},
		{"3 trailing bytes", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 3, false)},
		{"3 trailing bytes, last corrupt", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 3, true)},
		{"2 trailing bytes, last corrupt", trailing(advert(t, v3(), src4, vrrp.Group4, 255), 2, true)},
		{"zero addresses", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[3] = 0 }, false)},
		{"interval 0", mutate(advert(t, v3(), src4, vrrp.Group4, 255), func(m []byte) { m[4], m[5] = 0, 0 }, false)},
		{"unknown VRID", advert(t, unknown, src4, vrrp.Group4, 255)},
		{"wrong auth type", advert(t, noAuth, src4, vrrp.Group4, 255)},
		{"wrong password", advert(t, wrongPass, src4, vrrp.Group4, 255)},
		{"v2 interval mismatch", advert(t, v2Other, src4, vrrp.Group4, 255)},
		{"interval outside bounds", advert(t, wrongInterval, src4, vrrp.Group4, 255)},
		{"source not a unicast peer", advert(t, unicast, other, netip.MustParseAddr("192.0.2.11"), 255)},
		{"non-VRRP UDP", udp},
		{"non-VRRP ARP", arp},
	}
}

// TestXDPMatchesDecoder runs the same frames through xdp_vrrp and through
// vrrp.Classify: the same verdict, and the same counter moves.
func TestXDPMatchesDecoder(t *testing.T) {
	d := newDatapath(t)
	configure(t, d)
	for _, tc := range xdpCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			before, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			ret, err := d.XDP().Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := d.Counters()

			reason, isVRRP := vrrp.Classify(tc.frame, lookup)
			want := uint32(xdpPass)
			if isVRRP && reason != vrrp.ReasonValid {
				want = xdpDrop
			}
			if ret != want {
				t.Errorf("XDP returned %d, want %d (Go: %v, VRRP %v)", ret, want, reason, isVRRP)
			}
			for i := range after {
				moved := after[i] - before[i]
				wantMoved := uint64(0)
				if isVRRP && i == int(reason) {
					wantMoved = 1
				}
				if moved != wantMoved {
					name := vrrp.Reason(i).String()
					t.Errorf("counter %s moved by %d, want %d (Go says %v)", name, moved, wantMoved, reason)
				}
			}
		})
	}
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
