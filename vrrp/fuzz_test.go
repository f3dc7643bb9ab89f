package vrrp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// FuzzDecodePacket: decoding never panics; what decodes re-encodes to the same
// VRRP message (the decoder keeps every field the encoder writes).
func FuzzDecodePacket(f *testing.F) {
	for _, p := range [][]byte{
		mustPacket(f, v2Advert(), src4, Group4),
		mustPacket(f, v3Advert4(), src4, Group4),
		mustPacket(f, v3Advert6(), src6, Group6),
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		p, err := DecodePacket(pkt)
		if err != nil {
			if _, ok := ReasonOf(err); !ok && err != ErrNotVRRP {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		msg, err := p.Advert.Marshal(p.Src, p.Dst)
		if err != nil {
			t.Fatalf("re-encode of a decoded advert: %v", err)
		}
		hdr := 20
		if p.Src.Is6() {
			hdr = 40
		} else {
			hdr = int(pkt[0]&0x0f) * 4
		}
		orig := pkt[hdr : hdr+len(msg)]
		// v3 ignores the 4 reserved bits on receive and sends them as 0.
		if p.Version == 3 {
			orig = bytes.Clone(orig)
			orig[4] &= 0x0f
			fixSum(orig, p.Src, p.Dst)
		}
		if !bytes.Equal(orig, msg) {
			t.Fatalf("re-encode differs:\n got %x\nwant %x", msg, orig)
		}
	})
}

func fixSum(msg []byte, src, dst netip.Addr) {
	msg[6], msg[7] = 0, 0
	s := messageChecksum(msg, msg[0]>>4, src, dst, false)
	msg[6], msg[7] = byte(s>>8), byte(s)
}

// FuzzRoundTrip: decode(encode(x)) == x for every advert the encoder accepts.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(2), uint8(51), uint8(150), uint16(100), uint8(1), []byte("secret12"), []byte{192, 0, 2, 1}, false)
	f.Add(uint8(3), uint8(53), uint8(0), uint16(4095), uint8(0), []byte{}, bytes.Repeat([]byte{0x20, 1, 0xd, 0xb8}, 8), true)
	f.Fuzz(func(t *testing.T, version, vrid, prio uint8, interval uint16, authType uint8, auth, addrs []byte, v6 bool) {
		a := &Advert{Version: version, VRID: vrid, Priority: prio, AuthType: authType}
		copy(a.AuthData[:], auth)
		src, dst, size := src4, Group4, 4
		if v6 {
			src, dst, size = src6, Group6, 16
		}
		if version == 2 {
			a.Interval = time.Duration(interval%256) * time.Second
		} else {
			a.Interval = time.Duration(interval%4096) * IntervalUnitV3
		}
		for len(addrs) >= size && len(a.Addrs) < 255 {
			ip, _ := netip.AddrFromSlice(addrs[:size])
			a.Addrs = append(a.Addrs, ip)
			addrs = addrs[size:]
		}
		msg, err := a.Marshal(src, dst)
		if err != nil {
			return // the encoder refuses what the wire cannot carry
		}
		got, err := DecodeMessage(msg, src, dst, TTL)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", a, err)
		}
		if got.Version != a.Version || got.VRID != a.VRID || got.Priority != a.Priority ||
			got.Interval != a.Interval || got.AuthType != a.AuthType || got.AuthData != a.AuthData ||
			len(got.Addrs) != len(a.Addrs) {
			t.Fatalf("decode(encode(x)) = %+v, want %+v", got, a)
		}
		for i := range a.Addrs {
			if got.Addrs[i] != a.Addrs[i] {
				t.Fatalf("address %d = %v, want %v", i, got.Addrs[i], a.Addrs[i])
			}
		}
	})
}

func BenchmarkDecodePacket(b *testing.B) {
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"v2-ipv4", mustPacket(b, v2Advert(), src4, Group4)},
		{"v3-ipv4", mustPacket(b, v3Advert4(), src4, Group4)},
		{"v3-ipv6", mustPacket(b, v3Advert6(), src6, Group6)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.pkt)))
			for b.Loop() {
				if _, err := DecodePacket(tc.pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendPacket(b *testing.B) {
	for _, tc := range []struct {
		name     string
		a        *Advert
		src, dst netip.Addr
	}{
		{"v2-ipv4", v2Advert(), src4, Group4},
		{"v3-ipv4", v3Advert4(), src4, Group4},
		{"v3-ipv6", v3Advert6(), src6, Group6},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 128)
			for b.Loop() {
				var err error
				if buf, err = tc.a.AppendPacket(buf[:0], tc.src, tc.dst, TTL); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecodePacketForms: a packet ChecksumEither takes is one the
// pseudo-header or the message-only form takes, and the other way round; an
// advert taken message-only re-encodes, ChecksumAsV2, to the same checksum.
func FuzzDecodePacketForms(f *testing.F) {
	asV2 := v3Advert4()
	asV2.ChecksumAsV2 = true
	for _, p := range [][]byte{
		mustPacket(f, v2Advert(), src4, Group4),
		mustPacket(f, v3Advert4(), src4, Group4),
		mustPacket(f, asV2, src4, Group4),
		mustPacket(f, v3Advert6(), src6, Group6),
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		std, errStd := DecodePacketForm(pkt, ChecksumPseudoHeader)
		alone, errAlone := DecodePacketForm(pkt, ChecksumMessageOnly)
		_, errEither := DecodePacketForm(pkt, ChecksumEither)
		if (errEither == nil) != (errStd == nil || errAlone == nil) {
			t.Fatalf("either: %v; pseudo-header: %v; message only: %v", errEither, errStd, errAlone)
		}
		for _, err := range []error{errStd, errAlone, errEither} {
			if _, ok := ReasonOf(err); err != nil && !ok && err != ErrNotVRRP {
				t.Fatalf("error without a reason: %v", err)
			}
		}
		if std != nil && std.ChecksumAsV2 {
			t.Fatalf("taken with the pseudo-header, marked ChecksumAsV2")
		}
		if alone == nil || alone.Version != 3 || !alone.Src.Is4() {
			return
		}
		msg, err := alone.Advert.Marshal(alone.Src, alone.Dst)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		hdr := int(pkt[0]&0x0f) * 4
		orig := bytes.Clone(pkt[hdr : hdr+len(msg)])
		if orig[4]&0xf0 == 0 && !bytes.Equal(orig, msg) {
			t.Fatalf("re-encode differs:\n got %x\nwant %x", msg, orig)
		}
	})
}
