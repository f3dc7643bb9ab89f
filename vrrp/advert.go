// Package vrrp holds the VRRP wire format (RFC 3768 version 2 and RFC 5798 version
// 3, over IPv4 and IPv6), the reasons an advert is dropped, and the protocol's
// constants. Configuration lives in vrrp/config.
package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol constants from RFC 3768 and RFC 5798.
const (
	Protocol          = 112 // IP protocol number of VRRP
	TypeAdvertisement = 1
	TTL               = 255 // adverts are sent, and accepted, with this TTL or hop limit only

	AuthNone = 0 // v2: no authentication
	AuthPass = 1 // v2: simple text password (RFC 2338), still sent by keepalived
	AuthAH   = 2 // v2: IP Authentication Header; carried in protocol 51, never in 112

	AuthDataLen = 8 // v2 authentication data, present in every v2 advert

	headerLen = 8
)

// The multicast groups adverts go to unless keepalived's vrrp_mcast_group4/6 say otherwise.
var (
	Group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	Group6 = netip.MustParseAddr("ff02::12")
)

// Interval limits by version: v2 counts whole seconds in a byte, v3 counts
// centiseconds in 12 bits.
const (
	MinIntervalV2  = time.Second
	MaxIntervalV2  = 255 * time.Second
	IntervalUnitV3 = 10 * time.Millisecond
	MinIntervalV3  = IntervalUnitV3
	MaxIntervalV3  = 4095 * IntervalUnitV3
)

// Advert is one VRRP ADVERTISEMENT.
type Advert struct {
	Version  uint8 // 2 or 3
	VRID     uint8
	Priority uint8 // 0: the master is leaving; 255: the address owner
	// Interval is Adver Int (v2, whole seconds) or Max Adver Int (v3, 10 ms steps).
	Interval time.Duration
	// AuthType and AuthData exist in version 2 only. AuthData is sent as it is: for
	// AuthPass it is the password, NUL-padded to 8 bytes.
	AuthType uint8
	AuthData [AuthDataLen]byte
	// Addrs are the virtual addresses, all IPv4 or all IPv6 like the packet itself.
	Addrs []netip.Addr
	// ChecksumAsV2: a version 3 advert over IPv4 whose checksum covers the
	// message alone, as version 2's does, without RFC 5798's pseudo-header
	// (keepalived's v3_checksum_as_v2, FRR's no checksum-with-ipv4-pseudoheader,
	// RFC 9568's reading). Append computes that form; decoding sets it when
	// that is the form that verified. Meaningless for anything else.
	ChecksumAsV2 bool
}

// ChecksumForm is which checksum a version 3 advert over IPv4 must carry to be
// accepted. Every other advert has one form only.
type ChecksumForm uint8

const (
	// ChecksumPseudoHeader: with the IPv4 pseudo-header, as keepalived and
	// FRR compute it by default.
	ChecksumPseudoHeader ChecksumForm = iota
	// ChecksumMessageOnly: the message alone (v3_checksum_as_v2). keepalived
	// so configured accepts this form only.
	ChecksumMessageOnly
	// ChecksumEither: either form; for an advert no instance here judges
	// (another router's VRID), which is well formed whichever its routers use.
	ChecksumEither
)

// ErrNotVRRP is returned by DecodePacket for an IP packet that does not carry
// VRRP. It is not a drop reason: such packets are none of VRRP's business.
var ErrNotVRRP = errors.New("not a VRRP packet")

// DecodeMessage decodes a VRRP message, the payload of an IP packet from src to dst
// that arrived with TTL (or hop limit) ttl. It applies, in order, the checks that
// do not depend on configuration: length, version, type, TTL, checksum, address
// count, interval and (v2) authentication type. Every error wraps one of the
// package's Err* sentinels.
func DecodeMessage(b []byte, src, dst netip.Addr, ttl uint8) (*Advert, error) {
	a := new(Advert)
	if err := a.decode(b, src, dst, ttl, ChecksumPseudoHeader); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Advert) decode(b []byte, src, dst netip.Addr, ttl uint8, form ChecksumForm) error {
	if len(b) < headerLen {
		return invalid(ErrLength, "%d bytes, want at least %d", len(b), headerLen)
	}
	a.Version = b[0] >> 4
	switch {
	case a.Version != 2 && a.Version != 3:
		return invalid(ErrVersion, "version %d", a.Version)
	case a.Version == 2 && !src.Is4():
		return invalid(ErrVersion, "version 2 over IPv6")
	}
	if typ := b[0] & 0x0f; typ != TypeAdvertisement {
		return invalid(ErrType, "type %d", typ)
	}
	if ttl != TTL {
		return invalid(ErrTTL, "ttl %d, want %d", ttl, TTL)
	}
	if a.Version == 3 && src.Is4() {
		with := messageChecksum(b, 3, src, dst, false) == 0
		alone := messageChecksum(b, 3, src, dst, true) == 0
		switch {
		case form == ChecksumMessageOnly && !alone:
			return invalid(ErrChecksum, "checksum %#04x does not verify over the message alone (v3_checksum_as_v2)", binary.BigEndian.Uint16(b[6:8]))
		case form == ChecksumPseudoHeader && !with:
			return invalid(ErrChecksum, "checksum %#04x does not verify with the pseudo-header", binary.BigEndian.Uint16(b[6:8]))
		case form == ChecksumEither && !with && !alone:
			return invalid(ErrChecksum, "checksum %#04x verifies in neither form", binary.BigEndian.Uint16(b[6:8]))
		}
		a.ChecksumAsV2 = form == ChecksumMessageOnly || form == ChecksumEither && !with
	} else if sum := messageChecksum(b, a.Version, src, dst, false); sum != 0 {
		return invalid(ErrChecksum, "checksum %#04x does not verify", binary.BigEndian.Uint16(b[6:8]))
	}

	a.VRID, a.Priority = b[1], b[2]
	count := int(b[3])
	addrLen := 4
	if src.Is6() {
		addrLen = 16
	}
	want := headerLen + count*addrLen
	if a.Version == 2 {
		want += AuthDataLen
	}
	if count == 0 || len(b) != want {
		return invalid(ErrAddrCount, "%d addresses in %d bytes", count, len(b))
	}

	if a.Version == 2 {
		a.AuthType = b[4]
		a.Interval = time.Duration(b[5]) * time.Second
	} else {
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * IntervalUnitV3
	}
	if a.Interval == 0 {
		return invalid(ErrInterval, "interval 0")
	}
	if a.Version == 2 && a.AuthType != AuthNone && a.AuthType != AuthPass {
		return invalid(ErrAuthType, "authentication type %d", a.AuthType)
	}

	a.Addrs = make([]netip.Addr, count)
	p := b[headerLen:]
	for i := range a.Addrs {
		if addrLen == 4 {
			a.Addrs[i] = netip.AddrFrom4([4]byte(p[:4]))
		} else {
			a.Addrs[i] = netip.AddrFrom16([16]byte(p[:16]))
		}
		p = p[addrLen:]
	}
	if a.Version == 2 {
		copy(a.AuthData[:], p)
	}
	return nil
}

// Len returns the length of the encoded message.
func (a *Advert) Len() int {
	n := headerLen
	for _, ip := range a.Addrs {
		n += ip.BitLen() / 8
	}
	if a.Version == 2 {
		n += AuthDataLen
	}
	return n
}

// Append appends the encoded message, with its checksum for a packet from src to
// dst, to b. It returns an error for an advert that DecodeMessage would refuse.
func (a *Advert) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := a.validate(src, dst); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, a.Version<<4|TypeAdvertisement, a.VRID, a.Priority, byte(len(a.Addrs)))
	if a.Version == 2 {
		b = append(b, a.AuthType, byte(a.Interval/time.Second))
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(a.Interval/IntervalUnitV3))
	}
	b = append(b, 0, 0) // checksum, filled in below
	for _, ip := range a.Addrs {
		b = append(b, ip.AsSlice()...)
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	binary.BigEndian.PutUint16(msg[6:8], messageChecksum(msg, a.Version, src, dst, a.ChecksumAsV2 && src.Is4()))
	return b, nil
}

// Marshal returns the encoded message for a packet from src to dst.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	return a.Append(make([]byte, 0, a.Len()), src, dst)
}

func (a *Advert) validate(src, dst netip.Addr) error {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() || src.Is4In6() || dst.Is4In6() {
		return fmt.Errorf("encode advert: source %v and destination %v must be addresses of one family", src, dst)
	}
	switch a.Version {
	case 2:
		if !src.Is4() {
			return invalid(ErrVersion, "version 2 over IPv6")
		}
		if a.Interval < MinIntervalV2 || a.Interval > MaxIntervalV2 || a.Interval%time.Second != 0 {
			return invalid(ErrInterval, "version 2 interval %v is not 1s to 255s in whole seconds", a.Interval)
		}
		if a.AuthType != AuthNone && a.AuthType != AuthPass {
			return invalid(ErrAuthType, "authentication type %d", a.AuthType)
		}
	case 3:
		if a.Interval < MinIntervalV3 || a.Interval > MaxIntervalV3 || a.Interval%IntervalUnitV3 != 0 {
			return invalid(ErrInterval, "version 3 interval %v is not 10ms to 40.95s in 10ms steps", a.Interval)
		}
		if a.AuthType != AuthNone || a.AuthData != [AuthDataLen]byte{} {
			return invalid(ErrAuthType, "version 3 has no authentication")
		}
	default:
		return invalid(ErrVersion, "version %d", a.Version)
	}
	if len(a.Addrs) == 0 || len(a.Addrs) > 255 {
		return invalid(ErrAddrCount, "%d addresses, want 1 to 255", len(a.Addrs))
	}
	for _, ip := range a.Addrs {
		if ip.Is4() != src.Is4() || ip.Is4In6() || ip.Zone() != "" {
			return invalid(ErrAddrCount, "address %v is not of the packet's family", ip)
		}
	}
	return nil
}

// messageChecksum returns the Internet checksum of the message: over the message
// alone in version 2 (RFC 3768 5.3.8), over an IP pseudo-header and the message in
// version 3 (RFC 5798 5.2.8), unless alone says the message alone (a v3 IPv4
// advert as v3_checksum_as_v2 sums it). Over a message with a correct checksum
// it returns 0.
func messageChecksum(msg []byte, version uint8, src, dst netip.Addr, alone bool) uint16 {
	var sum uint32
	if version == 3 && !alone {
		sum = sumBytes(sum, src.AsSlice())
		sum = sumBytes(sum, dst.AsSlice())
		// Both pseudo-headers add up to the protocol plus the upper-layer length.
		sum += Protocol + uint32(len(msg))
	}
	return ^fold(sumBytes(sum, msg))
}

func sumBytes(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// Password returns the v2 AuthData for a simple-text password the way keepalived
// builds it: the first 8 bytes, NUL-padded.
func Password(pass string) [AuthDataLen]byte {
	var d [AuthDataLen]byte
	copy(d[:], pass)
	return d
}
