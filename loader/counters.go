package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
)

// Counters are what the kernel counted for one instance, summed over CPUs,
// under keepalived's statistics names where keepalived counts the same event.
// They live in the pinned instance_stats map: they survive the daemon, and
// start again when the instance is forgotten or the map is replaced.
type Counters struct {
	// AdvertRcvd counts the adverts accepted and recorded for the instance
	// (keepalived's advert_rcvd), not those tc found tagged for a VLAN;
	// PriZeroRcvd those of them with priority 0.
	AdvertRcvd  uint64
	PriZeroRcvd uint64
	// keepalived's error counters, each one of the drop reasons below:
	// PacketLenErr is vrrp.ReasonLength, IPTTLErr ReasonTTL, InvalidTypeRcvd
	// ReasonType, AdvertIntervalErr ReasonInterval, AddrListErr
	// ReasonAddrCount, AuthFailure ReasonAuthKey; ReasonAuthType is split
	// into InvalidAuthtype (a type that is neither 0 nor 1) and
	// AuthtypeMismatch (not the instance's).
	PacketLenErr      uint64
	IPTTLErr          uint64
	InvalidTypeRcvd   uint64
	AdvertIntervalErr uint64
	AddrListErr       uint64
	InvalidAuthtype   uint64
	AuthtypeMismatch  uint64
	AuthFailure       uint64
	// Dropped counts the adverts for the instance the kernel dropped, by
	// every reason that occurred (keepalived's included); a drop is counted
	// for an instance once its VRID can be read.
	Dropped map[vrrp.Reason]uint64
	// The fence's drops of the instance's VIP traffic: to a VIP, from one
	// (ARP and NA included), and to a VIP of a master in no_accept mode.
	FencedIngress uint64
	FencedEgress  uint64
	NoAccept      uint64
}

// InstanceCounters reads the counters of an instance: zero until the kernel
// saw an event for it.
func (d *Datapath) InstanceCounters(k Key) (Counters, error) {
	var sum bpfXvrrpInstanceStats
	var perCPU []bpfXvrrpInstanceStats
	err := d.objs.InstanceStats.Lookup(k.kernel(), &perCPU)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return Counters{}, fmt.Errorf("read counters of %+v: %w", k, err)
	}
	for _, s := range perCPU {
		add(&sum, &s)
	}
	// The adverts recorded are the peer's count (bpf/xvrrp.h).
	p, err := d.Peer(k.kernel())
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return Counters{}, fmt.Errorf("read counters of %+v: %w", k, err)
	}
	sum.Valid = p.Count
	return countersOf(sum), nil
}

func add(to, s *bpfXvrrpInstanceStats) {
	r := byReason(to)
	for i, v := range byReason(s) {
		*r[i] += *v
	}
	to.UnknownAuthType += s.UnknownAuthType
	to.PriZero += s.PriZero
	to.FencedIngress += s.FencedIngress
	to.FencedEgress += s.FencedEgress
	to.NoAccept += s.NoAccept
}

// byReason is the kernel's per-reason block of the counters, which the C
// indexes by enum xvrrp_reason (bpf/xvrrp.h asserts the layout).
func byReason(s *bpfXvrrpInstanceStats) []*uint64 {
	return []*uint64{
		vrrp.ReasonValid: &s.Valid, vrrp.ReasonLength: &s.Length, vrrp.ReasonIPVersion: &s.IpVersion,
		vrrp.ReasonIPChecksum: &s.IpChecksum, vrrp.ReasonVersion: &s.Version, vrrp.ReasonType: &s.Type,
		vrrp.ReasonTTL: &s.Ttl, vrrp.ReasonChecksum: &s.Checksum, vrrp.ReasonAddrCount: &s.AddrCount,
		vrrp.ReasonSource: &s.Source, vrrp.ReasonForeign: &s.Foreign, vrrp.ReasonDestination: &s.Destination,
		vrrp.ReasonOwnSource: &s.OwnSource, vrrp.ReasonInterval: &s.Interval, vrrp.ReasonAuthType: &s.AuthType,
		vrrp.ReasonAuthKey: &s.AuthKey, vrrp.ReasonUnicastPeer: &s.UnicastPeer,
	}
}

func countersOf(s bpfXvrrpInstanceStats) Counters {
	c := Counters{
		AdvertRcvd:        s.Valid,
		PriZeroRcvd:       s.PriZero,
		PacketLenErr:      s.Length,
		IPTTLErr:          s.Ttl,
		InvalidTypeRcvd:   s.Type,
		AdvertIntervalErr: s.Interval,
		AddrListErr:       s.AddrCount,
		InvalidAuthtype:   s.UnknownAuthType,
		AuthtypeMismatch:  s.AuthType - min(s.UnknownAuthType, s.AuthType),
		AuthFailure:       s.AuthKey,
		Dropped:           map[vrrp.Reason]uint64{},
		FencedIngress:     s.FencedIngress,
		FencedEgress:      s.FencedEgress,
		NoAccept:          s.NoAccept,
	}
	for r, v := range byReason(&s) {
		if reason := vrrp.Reason(r); !reason.Passes() && *v > 0 {
			c.Dropped[reason] = *v
		}
	}
	return c
}

// KernelCounters are the kernel's counters for every interface together,
// adverts for no instance of ours included.
type KernelCounters struct {
	// Adverts by reason: ReasonValid those accepted (before tc found any
	// tagged for a VLAN), ReasonForeign well-formed adverts for VRIDs no
	// instance runs here, passed on; every other reason a drop.
	Adverts       [vrrp.NumReasons]uint64
	FencedIngress uint64
	FencedEgress  uint64
	NoAccept      uint64
	// VLANTagged counts adverts XDP accepted that tc found tagged out of band:
	// their VLAN's, so not recorded.
	VLANTagged uint64
	// Liveness are fast_liveness's counters by CounterNames name: probes
	// answered, replies taken, and each reason a probe or reply was dropped.
	Liveness map[string]uint64
}

// TotalCounters reads the kernel's counters for every interface together.
func (d *Datapath) TotalCounters() (KernelCounters, error) {
	raw, err := d.Counters()
	if err != nil {
		return KernelCounters{}, err
	}
	var c KernelCounters
	copy(c.Adverts[:], raw[:vrrp.NumReasons])
	c.FencedIngress, c.FencedEgress = raw[CounterFencedIngress], raw[CounterFencedEgress]
	c.NoAccept, c.VLANTagged = raw[CounterNoAccept], raw[CounterVLANTagged]
	c.Liveness = map[string]uint64{}
	for i, name := range CounterNames {
		c.Liveness[name] = raw[i]
	}
	return c, nil
}

// ForeignAdverts counts the well-formed adverts for VRIDs no instance runs
// that arrived on an interface for a family: other routers' (keepalived or FRR
// during a migration), passed on untouched.
func (d *Datapath) ForeignAdverts(ifindex int, ipv6 bool) (uint64, error) {
	// Under VRID 0, which no VRRP router has (bpf/xvrrp.c, count_foreign).
	var perCPU []bpfXvrrpInstanceStats
	err := d.objs.InstanceStats.Lookup(Key{Ifindex: ifindex, IPv6: ipv6}.kernel(), &perCPU)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read foreign adverts of ifindex %d: %w", ifindex, err)
	}
	var n uint64
	for _, s := range perCPU {
		n += s.Foreign
	}
	return n, nil
}
