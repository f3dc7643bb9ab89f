package vrrp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Packet is a VRRP advert together with the IP header fields VRRP looks at.
type Packet struct {
	Src, Dst netip.Addr
	TTL      uint8 // TTL or hop limit
	Advert
}

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
)

// DecodePacket decodes an IPv4 or IPv6 packet carrying a VRRP message. It returns
// ErrNotVRRP for any other packet, and otherwise the same errors as DecodeMessage.
// Bytes past the IP header's length (Ethernet padding) are ignored.
func DecodePacket(pkt []byte) (*Packet, error) {
	return DecodePacketForm(pkt, ChecksumPseudoHeader)
}

// DecodePacketForm is DecodePacket for an instance whose version 3 IPv4
// adverts carry the checksum form given (Accept.ChecksumAsV2).
func DecodePacketForm(pkt []byte, form ChecksumForm) (*Packet, error) {
	if len(pkt) < 1 {
		return nil, ErrNotVRRP
	}
	var (
		p       = new(Packet)
		payload []byte
	)
	switch pkt[0] >> 4 {
	case 4:
		// Without a whole header nothing says the packet is VRRP (the kernel
		// passes it too).
		if len(pkt) < ipv4HeaderLen || pkt[9] != Protocol {
			return nil, ErrNotVRRP
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < ipv4HeaderLen || total < ihl || total > len(pkt) {
			return nil, invalid(ErrLength, "IPv4 header length %d, total length %d, %d bytes", ihl, total, len(pkt))
		}
		// Fragments are dropped as a length problem: an advert always fits one packet.
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
			return nil, invalid(ErrLength, "IPv4 fragment")
		}
		p.TTL = pkt[8]
		p.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		payload = pkt[ihl:total]
	case 6:
		// Extension headers are not walked: VRRP is sent without them.
		if len(pkt) < ipv6HeaderLen || pkt[6] != Protocol {
			return nil, ErrNotVRRP
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		if ipv6HeaderLen+plen > len(pkt) {
			return nil, invalid(ErrLength, "IPv6 payload length %d, %d bytes", plen, len(pkt)-ipv6HeaderLen)
		}
		p.TTL = pkt[7]
		p.Src = netip.AddrFrom16([16]byte(pkt[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		payload = pkt[ipv6HeaderLen : ipv6HeaderLen+plen]
	default:
		return nil, ErrNotVRRP
	}
	if err := p.Advert.decode(payload, p.Src, p.Dst, p.TTL, form); err != nil {
		return nil, err
	}
	return p, nil
}

// AppendPacket appends an IP packet carrying the advert from src to dst with the
// given TTL (or hop limit). Tests and fault injection use it to craft adverts the
// kernel would not build, such as a TTL other than 255.
func (a *Advert) AppendPacket(b []byte, src, dst netip.Addr, ttl uint8) ([]byte, error) {
	if err := a.validate(src, dst); err != nil {
		return b, err
	}
	n := a.Len()
	start := len(b)
	if src.Is4() {
		b = append(b,
			0x45, 0xc0, // version 4, IHL 5; DSCP CS6 like keepalived
			byte((ipv4HeaderLen+n)>>8), byte(ipv4HeaderLen+n),
			0, 0, 0, 0, // id, flags, fragment offset
			ttl, Protocol, 0, 0)
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
		hdr := b[start:]
		binary.BigEndian.PutUint16(hdr[10:12], ^fold(sumBytes(0, hdr)))
	} else {
		b = append(b, 0x6c, 0, 0, 0, byte(n>>8), byte(n), Protocol, ttl) // traffic class CS6
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
	}
	return a.Append(b, src, dst)
}

// Accept is what an instance accepts beyond a well-formed advert. The kernel keeps
// the same in the instances and unicast_peers maps and checks it in the same order.
type Accept struct {
	Version     uint8
	MinInterval time.Duration // version 2 accepts exactly its own interval
	MaxInterval time.Duration
	AuthType    uint8
	AuthData    [AuthDataLen]byte
	// UnicastPeers, when not empty, are the only sources accepted; PeerTTL
	// the TTL (or hop limit) each one's adverts must arrive with, any when
	// the peer is not in it (unicast_peer's min_ttl and max_ttl).
	UnicastPeers []netip.Addr
	PeerTTL      map[netip.Addr]TTLRange
	// ChecksumAsV2: version 3 IPv4 adverts must carry the checksum over the
	// message alone, and no other (v3_checksum_as_v2).
	ChecksumAsV2 bool
	// Addrs, when not nil, are the addresses an advert must carry, as many
	// and each one of them, in any order (keepalived's check of
	// virtual_ipaddress). With SkipCheckAdvAddr, a backup (not Master) skips
	// the check for adverts from LastMaster, the source it last accepted.
	Addrs            []netip.Addr
	SkipCheckAdvAddr bool
	LastMaster       netip.Addr
	Master           bool
	// Group is where a multicast instance's adverts are sent; the zero Addr
	// means Group4 or Group6. Classify checks it, and for a unicast instance
	// that the advert came to MAC, this interface's, when MAC is set.
	Group netip.Addr
	// Local is the address the instance sends from, and MAC the interface's:
	// an advert from either is our own. Unset, they are not checked.
	Local netip.Addr
	MAC   net.HardwareAddr
}

// Check applies the instance's rules to an advert that DecodeMessage accepted,
// from src. The advert's VRID has already matched the instance.
func (acc *Accept) Check(a *Advert, src netip.Addr) error {
	if a.Version != acc.Version {
		return invalid(ErrVersion, "version %d, instance runs version %d", a.Version, acc.Version)
	}
	if a.Interval < acc.MinInterval || a.Interval > acc.MaxInterval {
		return invalid(ErrInterval, "interval %v outside %v to %v", a.Interval, acc.MinInterval, acc.MaxInterval)
	}
	if a.Version == 2 {
		if a.AuthType != acc.AuthType {
			return invalid(ErrAuthType, "authentication type %d, want %d", a.AuthType, acc.AuthType)
		}
		if a.AuthType == AuthPass && a.AuthData != acc.AuthData {
			return invalid(ErrAuthKey, "password does not match")
		}
	}
	if len(acc.UnicastPeers) > 0 && !slices.Contains(acc.UnicastPeers, src) {
		return invalid(ErrUnicastPeer, "source %v is not a unicast peer", src)
	}
	return nil
}

// TTLRange is the TTL (or hop limit) a unicast peer's adverts must arrive
// with, Min to Max inclusive.
type TTLRange struct{ Min, Max uint8 }

// AnyTTL is a unicast peer's range when none is configured.
var AnyTTL = TTLRange{0, 255}

// Has says whether ttl is in the range.
func (r TTLRange) Has(ttl uint8) bool { return ttl >= r.Min && ttl <= r.Max }

// checkPeerTTL applies a unicast peer's TTL range, after Check accepted its
// advert: keepalived checks it last, and counts a miss as ip_ttl_err.
func (acc *Accept) checkPeerTTL(src netip.Addr, ttl uint8) error {
	if r, ok := acc.PeerTTL[src]; ok && len(acc.UnicastPeers) > 0 && !r.Has(ttl) {
		return invalid(ErrTTL, "ttl %d from %v outside its min_ttl %d to max_ttl %d", ttl, src, r.Min, r.Max)
	}
	return nil
}

// checkAddrs compares an advert's addresses with the instance's, last, as the
// kernel does (advert_addrs_ok); a mismatch is keepalived's addr_list_err,
// counted as ReasonAddrCount.
func (acc *Accept) checkAddrs(a *Advert, src netip.Addr) error {
	if acc.Addrs == nil || acc.SkipCheckAdvAddr && !acc.Master && acc.LastMaster.IsValid() && src == acc.LastMaster {
		return nil
	}
	if len(a.Addrs) != len(acc.Addrs) {
		return invalid(ErrAddrCount, "%d addresses, the instance has %d", len(a.Addrs), len(acc.Addrs))
	}
	for _, ip := range a.Addrs {
		if !slices.Contains(acc.Addrs, ip) {
			return invalid(ErrAddrCount, "address %v is not one of the instance's", ip)
		}
	}
	return nil
}

// form is the checksum form the instance's version 3 IPv4 adverts must carry.
func (acc *Accept) form() ChecksumForm {
	switch {
	case acc == nil:
		return ChecksumEither
	case acc.ChecksumAsV2:
		return ChecksumMessageOnly
	}
	return ChecksumPseudoHeader
}

// DecodeFrame decodes an Ethernet frame (with at most one 802.1Q tag) carrying an
// IPv4 or IPv6 VRRP packet, as the XDP program sees it.
func DecodeFrame(frame []byte) (*Packet, error) {
	const ethLen = 14
	if len(frame) < ethLen {
		return nil, ErrNotVRRP
	}
	etype, off := binary.BigEndian.Uint16(frame[12:14]), ethLen
	if etype == 0x8100 && len(frame) >= ethLen+4 {
		etype, off = binary.BigEndian.Uint16(frame[16:18]), ethLen+4
	}
	if etype != 0x0800 && etype != 0x86dd {
		return nil, ErrNotVRRP
	}
	return DecodePacket(frame[off:])
}
