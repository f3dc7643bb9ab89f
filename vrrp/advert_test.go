package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	src4 = netip.MustParseAddr("192.0.2.11")
	src6 = netip.MustParseAddr("fe80::5eff:fe10:b")
)

func v2Advert() *Advert {
	return &Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
		AuthType: AuthPass, AuthData: Password("secret12"),
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
}

func v3Advert4() *Advert {
	return &Advert{Version: 3, VRID: 52, Priority: 100, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}}
}

func v3Advert6() *Advert {
	return &Advert{Version: 3, VRID: 53, Priority: 200, Interval: 40950 * time.Millisecond,
		Addrs: []netip.Addr{netip.MustParseAddr("fe80::53"), netip.MustParseAddr("2001:db8::1")}}
}

func mustPacket(t testing.TB, a *Advert, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := a.AppendPacket(nil, src, dst, TTL)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a        *Advert
		src, dst netip.Addr
		wantLen  int
	}{
		{"v2 IPv4 PASS", v2Advert(), src4, Group4, 20},
		{"v2 IPv4 no auth", &Advert{Version: 2, VRID: 1, Priority: 255, Interval: 255 * time.Second,
			Addrs: []netip.Addr{src4}}, src4, Group4, 20},
		{"v3 IPv4", v3Advert4(), src4, Group4, 16},
		{"v3 IPv4 unicast", v3Advert4(), src4, netip.MustParseAddr("192.0.2.12"), 16},
		{"v3 IPv6", v3Advert6(), src6, Group6, 40},
		{"v3 priority 0", &Advert{Version: 3, VRID: 255, Priority: 0, Interval: 10 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}, src6, Group6, 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := tc.a.Marshal(tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(msg) != tc.wantLen || tc.a.Len() != tc.wantLen {
				t.Errorf("length %d (Len %d), want %d", len(msg), tc.a.Len(), tc.wantLen)
			}
			got, err := DecodeMessage(msg, tc.src, tc.dst, TTL)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.a, got, cmpAddr); diff != "" {
				t.Errorf("decode(encode) (-want +got):\n%s", diff)
			}
			pkt, err := DecodePacket(mustPacket(t, tc.a, tc.src, tc.dst))
			if err != nil {
				t.Fatal(err)
			}
			want := &Packet{Src: tc.src, Dst: tc.dst, TTL: TTL, Advert: *tc.a}
			if diff := cmp.Diff(want, pkt, cmpAddr); diff != "" {
				t.Errorf("DecodePacket (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChecksumRules pins the two RFCs' rules: v2 sums the message alone, v3 adds
// the pseudo-header, so a v3 advert does not verify for another destination.
func TestChecksumRules(t *testing.T) {
	v2, _ := v2Advert().Marshal(src4, Group4)
	if _, err := DecodeMessage(v2, src4, netip.MustParseAddr("192.0.2.99"), TTL); err != nil {
		t.Errorf("v2 checksum depends on the destination: %v", err)
	}
	v3, _ := v3Advert4().Marshal(src4, Group4)
	if _, err := DecodeMessage(v3, src4, netip.MustParseAddr("192.0.2.99"), TTL); !errors.Is(err, ErrChecksum) {
		t.Errorf("v3 with another destination: err = %v, want ErrChecksum", err)
	}
	// RFC 5798's pseudo-header for IPv4 by hand: src, dst, zero, protocol, length.
	var sum uint32
	sum = sumBytes(sum, src4.AsSlice())
	sum = sumBytes(sum, Group4.AsSlice())
	sum = sumBytes(sum, []byte{0, Protocol, 0, byte(len(v3))})
	sum = sumBytes(sum, v3)
	if got := fold(sum); got != 0xffff {
		t.Errorf("v3 message with pseudo-header sums to %#04x, want 0xffff", got)
	}
}

// corrupt returns a valid packet of a with mutate applied to the VRRP message and
// the checksum fixed up afterwards (unless keepSum), so only the intended fault is
// left.
func corrupt(t *testing.T, a *Advert, src, dst netip.Addr, ipLen int, mutate func(msg []byte) []byte, keepSum bool) []byte {
	t.Helper()
	pkt := mustPacket(t, a, src, dst)
	msg := mutate(append([]byte(nil), pkt[ipLen:]...))
	if !keepSum {
		binary.BigEndian.PutUint16(msg[6:8], 0)
		binary.BigEndian.PutUint16(msg[6:8], messageChecksum(msg, a.Version, src, dst, false))
	}
	out := append(pkt[:ipLen:ipLen], msg...)
	if src.Is4() {
		binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
		binary.BigEndian.PutUint16(out[10:12], 0)
		binary.BigEndian.PutUint16(out[10:12], ^fold(sumBytes(0, out[:ipLen])))
	} else {
		binary.BigEndian.PutUint16(out[4:6], uint16(len(msg)))
	}
	return out
}

func TestDecodeReasons(t *testing.T) {
	v2, v3, v6 := v2Advert(), v3Advert4(), v3Advert6()
	for _, tc := range []struct {
		name string
		pkt  []byte
		want error
	}{
		{"short message", corrupt(t, v3, src4, Group4, 20, func(m []byte) []byte { return m[:7] }, true), ErrLength},
		{"IPv4 total length beyond the frame", func() []byte {
			p := mustPacket(t, v2, src4, Group4)
			binary.BigEndian.PutUint16(p[2:4], uint16(len(p)+1))
			return p
		}(), ErrLength},
		{"IPv4 fragment", func() []byte {
			p := mustPacket(t, v2, src4, Group4)
			p[6] |= 0x20 // more fragments
			return p
		}(), ErrLength},
		{"IPv6 payload length beyond the frame", func() []byte {
			p := mustPacket(t, v6, src6, Group6)
			binary.BigEndian.PutUint16(p[4:6], 1000)
			return p
		}(), ErrLength},
		{"version 1", corrupt(t, v3, src4, Group4, 20, func(m []byte) []byte { m[0] = 0x11; return m }, false), ErrVersion},
		{"version 2 over IPv6", corrupt(t, v6, src6, Group6, 40, func(m []byte) []byte { m[0] = 0x21; return m }, false), ErrVersion},
		{"type 2", corrupt(t, v2, src4, Group4, 20, func(m []byte) []byte { m[0] = 0x22; return m }, false), ErrType},
		{"TTL 254", func() []byte {
			p, _ := v2.AppendPacket(nil, src4, Group4, 254)
			return p
		}(), ErrTTL},
		{"hop limit 1", func() []byte {
			p, _ := v6.AppendPacket(nil, src6, Group6, 1)
			return p
		}(), ErrTTL},
		{"bad checksum v2", corrupt(t, v2, src4, Group4, 20, func(m []byte) []byte { m[2]++; return m }, true), ErrChecksum},
		{"bad checksum v3 IPv6", corrupt(t, v6, src6, Group6, 40, func(m []byte) []byte { m[9] ^= 1; return m }, true), ErrChecksum},
		{"zero addresses", corrupt(t, v3, src4, Group4, 20, func(m []byte) []byte { m[3] = 0; return m[:8] }, false), ErrAddrCount},
		{"count beyond the length", corrupt(t, v3, src4, Group4, 20, func(m []byte) []byte { m[3] = 3; return m }, false), ErrAddrCount},
		{"trailing bytes", corrupt(t, v6, src6, Group6, 40, func(m []byte) []byte { return append(m, 0, 0, 0, 0) }, false), ErrAddrCount},
		{"v2 missing auth data", corrupt(t, v2, src4, Group4, 20, func(m []byte) []byte { return m[:12] }, false), ErrAddrCount},
		{"v2 interval 0", corrupt(t, v2, src4, Group4, 20, func(m []byte) []byte { m[5] = 0; return m }, false), ErrInterval},
		{"v3 interval 0", corrupt(t, v3, src4, Group4, 20, func(m []byte) []byte { m[4], m[5] = 0xf0, 0; return m }, false), ErrInterval},
		{"v2 AH", corrupt(t, v2, src4, Group4, 20, func(m []byte) []byte { m[4] = AuthAH; return m }, false), ErrAuthType},
		{"v2 auth type 7", corrupt(t, v2, src4, Group4, 20, func(m []byte) []byte { m[4] = 7; return m }, false), ErrAuthType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePacket(tc.pkt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			r, ok := ReasonOf(err)
			if want, _ := ReasonOf(tc.want); !ok || r != want {
				t.Errorf("ReasonOf = %v, %v; want %v", r, ok, want)
			}
		})
	}
}

func TestDecodeNotVRRP(t *testing.T) {
	udp := mustPacket(t, v2Advert(), src4, Group4)
	udp[9] = 17
	tcp6 := mustPacket(t, v3Advert6(), src6, Group6)
	tcp6[6] = 6
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:14], 0x0806)
	for name, f := range map[string]func() error{
		"UDP":   func() error { _, err := DecodePacket(udp); return err },
		"TCPv6": func() error { _, err := DecodePacket(tcp6); return err },
		"empty": func() error { _, err := DecodePacket(nil); return err },
		"ARP":   func() error { _, err := DecodeFrame(arp); return err },
	} {
		if err := f(); err != ErrNotVRRP {
			t.Errorf("%s: err = %v, want ErrNotVRRP", name, err)
		}
		if _, ok := ReasonOf(ErrNotVRRP); ok {
			t.Errorf("ErrNotVRRP must not count as a drop reason")
		}
	}
}

func TestDecodeFrameVLANAndPadding(t *testing.T) {
	pkt := mustPacket(t, v2Advert(), src4, Group4)
	frame := append([]byte{1, 0, 0x5e, 0, 0, 0x12, 2, 0, 0x5e, 0x10, 0, 0x0b, 0x81, 0, 0, 7, 0x08, 0}, pkt...)
	frame = append(frame, make([]byte, 6)...) // Ethernet padding past the IP length
	p, err := DecodeFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	if p.VRID != 51 {
		t.Errorf("VRID %d, want 51", p.VRID)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		want     error
	}{
		{"v2 over IPv6", Advert{Version: 2, Interval: time.Second, Addrs: []netip.Addr{src6}}, src6, Group6, ErrVersion},
		{"v4 version", Advert{Version: 4, Interval: time.Second, Addrs: []netip.Addr{src4}}, src4, Group4, ErrVersion},
		{"v2 half second", Advert{Version: 2, Interval: 500 * time.Millisecond, Addrs: []netip.Addr{src4}}, src4, Group4, ErrInterval},
		{"v3 5 ms", Advert{Version: 3, Interval: 5 * time.Millisecond, Addrs: []netip.Addr{src4}}, src4, Group4, ErrInterval},
		{"v3 41 s", Advert{Version: 3, Interval: 41 * time.Second, Addrs: []netip.Addr{src4}}, src4, Group4, ErrInterval},
		{"v3 with auth", Advert{Version: 3, Interval: time.Second, AuthType: AuthPass, Addrs: []netip.Addr{src4}}, src4, Group4, ErrAuthType},
		{"no addresses", Advert{Version: 3, Interval: time.Second}, src4, Group4, ErrAddrCount},
		{"mixed families", Advert{Version: 3, Interval: time.Second, Addrs: []netip.Addr{src6}}, src4, Group4, ErrAddrCount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.a.Marshal(tc.src, tc.dst); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := v2Advert().Marshal(src4, Group6); err == nil {
		t.Error("source and destination of two families: want an error")
	}
}

func TestAcceptCheck(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.12")
	acc := Accept{Version: 2, MinInterval: time.Second, MaxInterval: time.Second,
		AuthType: AuthPass, AuthData: Password("secret12"), UnicastPeers: []netip.Addr{src4}}
	for _, tc := range []struct {
		name string
		edit func(a *Advert, acc *Accept)
		src  netip.Addr
		want error
	}{
		{"valid", func(*Advert, *Accept) {}, src4, nil},
		{"version mismatch", func(a *Advert, acc *Accept) { acc.Version = 3 }, src4, ErrVersion},
		{"v2 other interval", func(a *Advert, _ *Accept) { a.Interval = 2 * time.Second }, src4, ErrInterval},
		{"no auth where PASS is set", func(a *Advert, _ *Accept) { a.AuthType = AuthNone }, src4, ErrAuthType},
		{"wrong password", func(a *Advert, _ *Accept) { a.AuthData = Password("secret13") }, src4, ErrAuthKey},
		{"not a unicast peer", func(*Advert, *Accept) {}, peer, ErrUnicastPeer},
		{"any source without peers", func(_ *Advert, acc *Accept) { acc.UnicastPeers = nil }, peer, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, acc := v2Advert(), acc
			acc.UnicastPeers = append([]netip.Addr(nil), acc.UnicastPeers...)
			tc.edit(a, &acc)
			if err := acc.Check(a, tc.src); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := Reason(0); r < NumReasons; r++ {
		name := r.String()
		if name == "" || seen[name] {
			t.Errorf("reason %d has no unique name (%q)", r, name)
		}
		seen[name] = true
	}
	if got := NumReasons.String(); got != "reason(17)" {
		t.Errorf("out-of-range reason prints %q", got)
	}
	if _, ok := ReasonOf(errors.New("other")); ok {
		t.Error("ReasonOf(foreign error) = ok")
	}
}

// TestChecksumAsV2Golden: a VRRPv3 IPv4 advert with v3_checksum_as_v2 carries
// the checksum of the message alone, computed here by hand (RFC 1071 over the
// sixteen bytes, checksum zeroed): 3134+6402+000a+c000+0202+c000+0203 =
// 0x21945, folded 0x1947, complemented 0xe6b8. That form, and no other, is
// what such an instance accepts; a default instance refuses it, as keepalived
// does either way round ("Invalid VRRPv3 checksum").
func TestChecksumAsV2Golden(t *testing.T) {
	golden := []byte{0x31, 52, 100, 2, 0x00, 0x0a, 0xe6, 0xb8, 192, 0, 2, 2, 192, 0, 2, 3}
	a := Advert{Version: 3, VRID: 52, Priority: 100, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}, ChecksumAsV2: true}
	for _, dst := range []netip.Addr{Group4, netip.MustParseAddr("192.0.2.12")} {
		got, err := a.Marshal(src4, dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, golden) {
			t.Errorf("to %v: %x, want %x (the destination is not summed)", dst, got, golden)
		}
	}
	pkt, err := a.AppendPacket(nil, src4, Group4, TTL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePacket(pkt); !errors.Is(err, ErrChecksum) {
		t.Errorf("default instance: err = %v, want ErrChecksum", err)
	}
	p, err := DecodePacketForm(pkt, ChecksumMessageOnly)
	if err != nil || !p.ChecksumAsV2 {
		t.Errorf("v3_checksum_as_v2 instance: %+v, %v; want accepted as ChecksumAsV2", p, err)
	}
	if p, err := DecodePacketForm(pkt, ChecksumEither); err != nil || !p.ChecksumAsV2 {
		t.Errorf("no instance: %+v, %v; want accepted as ChecksumAsV2", p, err)
	}
	a.ChecksumAsV2 = false
	std, _ := a.AppendPacket(nil, src4, Group4, TTL)
	if _, err := DecodePacketForm(std, ChecksumMessageOnly); !errors.Is(err, ErrChecksum) {
		t.Errorf("v3_checksum_as_v2 instance, pseudo-header advert: err = %v, want ErrChecksum", err)
	}
	if p, err := DecodePacketForm(std, ChecksumEither); err != nil || p.ChecksumAsV2 {
		t.Errorf("no instance, pseudo-header advert: %+v, %v", p, err)
	}
	// Version 2 and IPv6 have one form only, whatever the flag says.
	v6 := Advert{Version: 3, VRID: 53, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}, ChecksumAsV2: true}
	src6 := netip.MustParseAddr("fe80::1")
	m6, _ := v6.Marshal(src6, Group6)
	v6.ChecksumAsV2 = false
	n6, _ := v6.Marshal(src6, Group6)
	if !bytes.Equal(m6, n6) {
		t.Errorf("IPv6 checksum depends on ChecksumAsV2: %x vs %x", m6, n6)
	}
}
