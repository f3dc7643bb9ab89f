package loader

import (
	"net"
	"net/netip"
)

// SetGroup sets where a multicast instance's adverts must be sent
// (vrrp_mcast_group4/6, mcast_dst_ip); the zero Addr means the standard group,
// 224.0.0.18 or ff02::12. An advert to any other destination is dropped as
// vrrp.ReasonDestination.
func (in *Instance) SetGroup(group netip.Addr) { in.Group = addr16(group) }

// SetLocal sets the address the instance sends its adverts from: an advert
// from it is dropped as vrrp.ReasonOwnSource. The zero Addr: not checked.
func (in *Instance) SetLocal(local netip.Addr) { in.Local = addr16(local) }

// SetMAC sets the MAC of the instance's interface: a unicast instance accepts
// adverts only in frames sent to it (vrrp.ReasonDestination), and no instance
// accepts one sent from it (vrrp.ReasonOwnSource). nil: neither is checked.
func (in *Instance) SetMAC(mac net.HardwareAddr) {
	in.Mac = [6]uint8{}
	copy(in.Mac[:], mac)
}

// addr16 is an address in the kernel's 16-byte fields: IPv4 in the first four
// bytes, the rest zero; the zero Addr is all zero.
func addr16(a netip.Addr) (b [16]uint8) {
	if a.IsValid() {
		copy(b[:], a.AsSlice())
	}
	return b
}

const (
	// FlagRecordInXDP has xdp_vrrp record valid adverts itself instead of
	// handing them to tc_fence_ingress, which records them only when the frame
	// was not VLAN-tagged out of band. For prog.Run tests, which run XDP alone;
	// an agent never sets it.
	FlagRecordInXDP = uint32(bpfXvrrpFlagXVRRP_F_RECORD_IN_XDP)
	// FlagHandingOver marks a master that steps down and waits for its
	// successor: the next valid advert from another router ends its lease
	// (InstanceState.HandingOver).
	FlagHandingOver = uint32(bpfXvrrpFlagXVRRP_F_HANDING_OVER)

	// CounterVLANTagged counts adverts XDP found valid that the fence's ingress
	// then found tagged out of band (skb->vlan_tci), and did not record.
	CounterVLANTagged = int(bpfXvrrpCounterXVRRP_COUNTER_VLAN_TAGGED)
)
