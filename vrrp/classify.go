package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// Classify judges an Ethernet frame the way the kernel's xdp_vrrp does, check for
// check and in the same order (see Reason): the IP header as ip_rcv would
// (version, header checksum), DecodePacket's checks, the source, then the
// instance's, looked up by VRID and family (nil when there is none: the advert
// is another router's, ReasonForeign), with the destination and our own source
// before Accept.Check. It returns false for a frame that is not VRRP, which the
// kernel passes untouched, and for every tagged frame: a tagged frame belongs to
// its VLAN device, never to the instances of the interface it arrived on.
func Classify(frame []byte, lookup func(vrid uint8, ipv6 bool) *Accept) (Reason, bool) {
	const ethLen = 14
	if len(frame) < ethLen {
		return 0, false
	}
	pkt := frame[ethLen:]
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0800:
		if len(pkt) < ipv4HeaderLen || pkt[9] != Protocol {
			return 0, false
		}
		if pkt[0]>>4 != 4 {
			return ReasonIPVersion, true
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < ipv4HeaderLen || ihl > len(pkt) {
			return ReasonLength, true
		}
		if fold(sumBytes(0, pkt[:ihl])) != 0xffff {
			return ReasonIPChecksum, true
		}
	case 0x86dd:
		if len(pkt) < ipv6HeaderLen || pkt[6] != Protocol {
			return 0, false
		}
		if pkt[0]>>4 != 6 {
			return ReasonIPVersion, true
		}
	default:
		return 0, false
	}
	// The instance, if the header can name it: a v3 IPv4 advert's checksum
	// is checked in the form its instance wants (XDP's checksum_form).
	var acc *Accept
	if off := vrrpOffset(pkt); off >= 0 && len(pkt) >= off+2 {
		acc = lookup(pkt[off+1], pkt[0]>>4 == 6)
	}
	p, err := DecodePacketForm(pkt, acc.form())
	if r, _ := ReasonOf(err); r == ReasonTTL {
		p, err = decodeUnicastTTL(pkt, lookup)
	}
	if err != nil {
		r, _ := ReasonOf(err)
		return r, true
	}
	if !unicastSource(p.Src) {
		return ReasonSource, true
	}
	if acc == nil {
		return ReasonForeign, true
	}
	dstMAC, srcMAC := frame[0:6], frame[6:12]
	if !acc.toUs(p.Dst, dstMAC) {
		return ReasonDestination, true
	}
	if len(acc.MAC) > 0 && bytes.Equal(srcMAC, acc.MAC) || acc.Local.IsValid() && p.Src == acc.Local {
		return ReasonOwnSource, true
	}
	err = acc.Check(&p.Advert, p.Src)
	if err == nil {
		err = acc.checkPeerTTL(p.Src, p.TTL)
	}
	if err == nil {
		err = acc.checkAddrs(&p.Advert, p.Src)
	}
	r, _ := ReasonOf(err)
	return r, true
}

// vrrpOffset is where the VRRP message of an IPv4 or IPv6 packet starts, -1
// when the IP header does not say.
func vrrpOffset(pkt []byte) int {
	switch pkt[0] >> 4 {
	case 4:
		return int(pkt[0]&0x0f) * 4
	case 6:
		return ipv6HeaderLen
	}
	return -1
}

// unicastSource says whether src may send an advert at all: the kernel's routing
// drops the others as martians before a socket sees them.
func unicastSource(src netip.Addr) bool {
	if src.Is4() {
		b := src.As4()
		return b[0] != 0 && b[0] != 127 && b[0] < 224
	}
	return !src.IsUnspecified() && !src.IsLoopback() && !src.IsMulticast()
}

// toUs says whether an advert to dst, in a frame to dstMAC, reached where the
// instance listens: its group, or, for a unicast instance, a unicast address
// in a frame to this interface's MAC (the kernel's PACKET_HOST; XDP cannot ask
// whether the address is local).
func (acc *Accept) toUs(dst netip.Addr, dstMAC []byte) bool {
	if len(acc.UnicastPeers) > 0 {
		if dst.Is4() && dst.As4()[0] >= 224 || dst.IsMulticast() {
			return false
		}
		return len(acc.MAC) == 0 || bytes.Equal(dstMAC, acc.MAC)
	}
	group := acc.Group
	if !group.IsValid() {
		group = Group4
		if dst.Is6() {
			group = Group6
		}
	}
	return dst == group
}

// decodeUnicastTTL decodes a packet DecodePacket refused for its TTL (or hop
// limit) alone: keepalived (2.x) takes a unicast instance's adverts at any
// TTL, since unicast peers may be routers apart and the peer list checks who
// sent them. For any other instance, the TTL is the reason.
func decodeUnicastTTL(pkt []byte, lookup func(vrid uint8, ipv6 bool) *Accept) (*Packet, error) {
	off, ttlAt := ipv6HeaderLen, 7
	if pkt[0]>>4 == 4 {
		off, ttlAt = int(pkt[0]&0x0f)*4, 8
	}
	// DecodePacket checked the lengths before the TTL: the VRID is there.
	acc := lookup(pkt[off+1], pkt[0]>>4 == 6)
	if acc == nil || len(acc.UnicastPeers) == 0 {
		return nil, ErrTTL
	}
	q := bytes.Clone(pkt)
	q[ttlAt] = TTL // DecodePacket does not check the IPv4 header checksum
	p, err := DecodePacketForm(q, acc.form())
	if err != nil {
		return nil, err
	}
	p.TTL = pkt[ttlAt]
	return p, nil
}
