package loader

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
)

// The datapath in the agent's terms: instances, their state and lease, the
// adverts the kernel heard. This file is the kernel's codec — centiseconds,
// 16-byte addresses, C enums — so that nothing outside loader/ knows the
// generated types.

// Key names an instance in the kernel: its interface, VRID and family.
type Key struct {
	Ifindex int
	VRID    uint8
	IPv6    bool
}

func (k Key) kernel() bpfXvrrpInstanceKey {
	f := FamilyIPv4
	if k.IPv6 {
		f = FamilyIPv6
	}
	return bpfXvrrpInstanceKey{Ifindex: uint32(k.Ifindex), Vrid: k.VRID, Family: f}
}

func keyOf(k bpfXvrrpInstanceKey) Key {
	return Key{Ifindex: int(k.Ifindex), VRID: k.Vrid, IPv6: k.Family == FamilyIPv6}
}

// addrOf reads a 16-byte kernel address of the key's family.
func (k Key) addrOf(b [16]uint8) netip.Addr {
	if k.IPv6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// Spec is what the kernel checks an instance's adverts against.
type Spec struct {
	Version  uint8
	AuthType uint8 // VRRPv2: vrrp.AuthNone, vrrp.AuthPass
	AuthData [vrrp.AuthDataLen]byte
	// Interval is ours: a VRRPv2 advert must carry it (RFC 3768); VRRPv3
	// accepts any interval, as backups adopt the master's.
	Interval time.Duration
	Unicast  bool // sources must be unicast peers (PutUnicastPeer)
	NoAccept bool // a master's fence drops traffic to its VIPs but ARP and ND
	// ChecksumAsV2: VRRPv3 IPv4 adverts must carry the checksum of the
	// message alone, without the pseudo-header (v3_checksum_as_v2).
	ChecksumAsV2 bool
	// Group is where a multicast instance's adverts must go; the zero Addr
	// is the standard group (and, for a unicast instance, not checked).
	Group netip.Addr
	// Local and MAC are ours: adverts from them are our own, looped back.
	Local netip.Addr
	MAC   net.HardwareAddr
	// Liveness: as master, answer fast_liveness probes (bpf/liveness.h).
	Liveness bool
}

// InstanceState is what the fence goes by: the instance's state and
// priority, and until when a master's VIPs pass (CLOCK_MONOTONIC; 0: never).
type InstanceState struct {
	State      vrrp.State
	Priority   uint8
	LeaseUntil time.Duration
	// Renewed is when the daemon last renewed a master's lease: a master
	// not renewed for more than an interval lets go in the kernel on the
	// next valid advert from another router.
	Renewed time.Duration
	// HandingOver: a master stepping down keeps its lease until the next
	// valid advert from another router, its successor's, ends it in the
	// kernel (or the lease runs out).
	HandingOver bool
}

func (st InstanceState) kernelState() uint8 {
	switch st.State {
	case vrrp.Backup:
		return StateBackup
	case vrrp.Master:
		return StateMaster
	case vrrp.Fault:
		return StateFault
	}
	return StateInit
}

func stateOf(v bpfXvrrpInstance) InstanceState {
	st := InstanceState{Priority: v.Priority, LeaseUntil: time.Duration(v.LeaseUntilNs),
		Renewed: time.Duration(v.RenewedNs), HandingOver: v.Flags&FlagHandingOver != 0}
	switch v.State {
	case StateBackup:
		st.State = vrrp.Backup
	case StateMaster:
		st.State = vrrp.Master
	case StateFault:
		st.State = vrrp.Fault
	}
	return st
}

// SetInstance writes an instance: what its adverts are checked against, and
// its state and lease. A master renews its lease by writing it again.
func (d *Datapath) SetInstance(k Key, s Spec, st InstanceState) error {
	if err := d.objs.Instances.Put(k.kernel(), instanceValue(s, st)); err != nil {
		return fmt.Errorf("put instance %+v: %w", k, err)
	}
	return nil
}

// SetInstances writes instances as SetInstance does, in one system call
// where the kernel can (a master renewing the leases of all its instances
// due together), else one by one.
func (d *Datapath) SetInstances(ks []Key, ss []Spec, sts []InstanceState) error {
	if len(ks) != len(ss) || len(ks) != len(sts) {
		return fmt.Errorf("put instances: %d keys, %d specs, %d states", len(ks), len(ss), len(sts))
	}
	keys := make([]bpfXvrrpInstanceKey, len(ks))
	vals := make([]bpfXvrrpInstance, len(ks))
	for i := range ks {
		keys[i], vals[i] = ks[i].kernel(), instanceValue(ss[i], sts[i])
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := d.objs.Instances.BatchUpdate(keys, vals, nil)
	if errors.Is(err, ebpf.ErrNotSupported) {
		var errs []error
		for i := range keys {
			errs = append(errs, d.objs.Instances.Put(keys[i], vals[i]))
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		return fmt.Errorf("put %d instances: %w", len(keys), err)
	}
	return nil
}

// instanceValue is an instance as the kernel holds it.
func instanceValue(s Spec, st InstanceState) bpfXvrrpInstance {
	v := bpfXvrrpInstance{
		Version:       s.Version,
		AuthType:      s.AuthType,
		State:         st.kernelState(),
		Priority:      st.Priority,
		AuthData:      s.AuthData,
		MinIntervalCs: 1,
		MaxIntervalCs: 4095,
		LeaseUntilNs:  uint64(max(st.LeaseUntil, 0)),
		RenewedNs:     uint64(max(st.Renewed, 0)),
		IntervalCs:    uint16(s.Interval / vrrp.IntervalUnitV3),
	}
	if st.HandingOver {
		v.Flags |= FlagHandingOver
	}
	if s.Version == 2 {
		cs := uint16(s.Interval / vrrp.IntervalUnitV3)
		v.MinIntervalCs, v.MaxIntervalCs = cs, cs
	}
	if s.Unicast {
		v.Flags |= FlagUnicast
	}
	if s.NoAccept {
		v.Flags |= FlagNoAccept
	}
	if s.ChecksumAsV2 {
		v.Flags |= FlagChecksumAsV2
	}
	if s.Liveness {
		v.Flags |= FlagLiveness
	}
	v.SetGroup(s.Group)
	v.SetLocal(s.Local)
	v.SetMAC(s.MAC)
	return v
}

// State reads an instance's state and lease as the kernel has them. It
// returns an error wrapping ebpf.ErrKeyNotExist for an instance it has not.
func (d *Datapath) State(k Key) (InstanceState, error) {
	var v bpfXvrrpInstance
	if err := d.objs.Instances.Lookup(k.kernel(), &v); err != nil {
		return InstanceState{}, err
	}
	return stateOf(v), nil
}

// LastAdvert is the last valid advert the kernel recorded for an instance,
// with the kernel's time of its arrival. It returns an error wrapping
// ebpf.ErrKeyNotExist when none was heard.
func (d *Datapath) LastAdvert(k Key) (vrrp.Heard, error) {
	p, err := d.Peer(k.kernel())
	if err != nil {
		return vrrp.Heard{}, err
	}
	return vrrp.Heard{Addr: k.addrOf(p.Addr), Priority: p.Priority,
		Interval: time.Duration(p.IntervalCs) * vrrp.IntervalUnitV3, At: time.Duration(p.LastSeenNs)}, nil
}

// Forget removes an instance, the advert it last heard and its unicast
// peers: what a re-created interface leaves under its old index.
func (d *Datapath) Forget(k Key, peers []netip.Addr) error {
	kk := k.kernel()
	errs := []error{d.objs.Instances.Delete(kk), d.objs.Peers.Delete(kk), d.objs.InstanceStats.Delete(kk),
		d.objs.DownTimers.Delete(kk), d.objs.Liveness.Delete(kk)}
	for _, p := range peers {
		errs = append(errs, d.objs.UnicastPeers.Delete(unicastKey(kk, p)))
	}
	for i, err := range errs {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

// PutVIPOf fences the address for the instance.
func (d *Datapath) PutVIPOf(k Key, vip netip.Addr) error {
	vk := bpfXvrrpVipKey{Family: k.kernel().Family}
	copy(vk.Addr[:], vip.AsSlice())
	return d.objs.Vips.Put(vk, k.kernel())
}

// ForgetVIP stops fencing an address: it is no instance's VIP any more.
func (d *Datapath) ForgetVIP(vip netip.Addr) error {
	vk := bpfXvrrpVipKey{Family: FamilyIPv4}
	if vip.Is6() {
		vk.Family = FamilyIPv6
	}
	copy(vk.Addr[:], vip.AsSlice())
	if err := d.objs.Vips.Delete(vk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// AllowPeer lets a unicast instance accept adverts from peer that arrive
// with a TTL (or hop limit) in ttl.
func (d *Datapath) AllowPeer(k Key, peer netip.Addr, ttl vrrp.TTLRange) error {
	return d.objs.UnicastPeers.Put(unicastKey(k.kernel(), peer), bpfXvrrpUnicastPeer{MinTtl: ttl.Min, MaxTtl: ttl.Max})
}

// CheckAdvertAddrs has the kernel take an instance's adverts only when they
// carry exactly addrs, its virtual_ipaddress list (in any order), as
// keepalived checks them; with skipSameMaster (skip_check_adv_addr) a backup
// checks only adverts from another source than the master it last accepted.
// old is the list written before: its addresses not in addrs are removed.
func (d *Datapath) CheckAdvertAddrs(k Key, old, addrs []netip.Addr, skipSameMaster bool) error {
	kk := k.kernel()
	var errs []error
	for _, a := range old {
		if !slices.Contains(addrs, a) {
			if err := d.objs.AdvertAddrs.Delete(unicastKey(kk, a)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, err)
			}
		}
	}
	for _, a := range addrs {
		errs = append(errs, d.objs.AdvertAddrs.Put(unicastKey(kk, a), uint8(1)))
	}
	c := bpfXvrrpAdvertCheck{Naddr: uint8(len(addrs))}
	if skipSameMaster {
		c.SkipSameMaster = 1
	}
	errs = append(errs, d.objs.AdvertChecks.Put(kk, c))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("advert addresses of %+v: %w", k, err)
	}
	return nil
}

// PutVMAC tells the egress fence that ifindex is a VMAC (use_vmac) on an
// interface with MAC parent: the IGMP and MLD reports the kernel sends from it
// leave with the parent's MAC, its router solicitations not at all, so that a
// backup's VMAC never draws the master's traffic to itself.
func (d *Datapath) PutVMAC(ifindex int, parent net.HardwareAddr) error {
	var v [8]byte
	copy(v[:6], parent)
	return d.objs.Vmacs.Put(uint32(ifindex), v)
}

// ForgetVMAC removes a VMAC that PutVMAC listed.
func (d *Datapath) ForgetVMAC(ifindex int) error {
	if err := d.objs.Vmacs.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// ForgetAdvertAddrs removes what CheckAdvertAddrs wrote for an instance.
func (d *Datapath) ForgetAdvertAddrs(k Key, addrs []netip.Addr) error {
	kk := k.kernel()
	errs := []error{d.objs.AdvertChecks.Delete(kk)}
	for _, a := range addrs {
		errs = append(errs, d.objs.AdvertAddrs.Delete(unicastKey(kk, a)))
	}
	for i, err := range errs {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

func unicastKey(k bpfXvrrpInstanceKey, a netip.Addr) bpfXvrrpUnicastKey {
	uk := bpfXvrrpUnicastKey{Instance: k}
	copy(uk.Addr[:], a.AsSlice())
	return uk
}

// Heard is an event of the kernel's: an advert that changed something for an
// instance (a new source, another priority, priority 0, one contesting ours),
// or, with MasterDown, the instance's Master_Down_Timer ran out in the kernel
// (SetDownTimer): then only Key is set, and At is when it was due.
type Heard struct {
	Key
	vrrp.Heard
	MasterDown bool
	// Lost: not an advert, but the kernel's word that the master Addr left
	// fast_liveness's multiplier probes unanswered (At: when it said so).
	Lost bool
}

// ReadHeard calls fn with each event until ctx is done, then returns
// ctx.Err().
func (d *Datapath) ReadHeard(ctx context.Context, fn func(Heard)) error {
	return d.ReadEvents(ctx, func(e Event) {
		k := keyOf(e.Key)
		if uint32(e.Kind) == EventMasterDown {
			fn(Heard{Key: k, Heard: vrrp.Heard{At: time.Duration(e.TimeNs)}, MasterDown: true})
			return
		}
		fn(Heard{Key: k, Heard: vrrp.Heard{Addr: k.addrOf(e.Addr), Priority: e.Priority,
			Interval: time.Duration(e.IntervalCs) * vrrp.IntervalUnitV3, At: time.Duration(e.TimeNs)},
			Lost: e.Kind == EventLivenessLost})
	})
}

// Instances is every instance the kernel holds and its state, for a reader
// such as `xvrrp status` with no daemon running.
func (d *Datapath) Instances() (map[Key]InstanceState, error) {
	es, err := d.instanceEntries()
	out := map[Key]InstanceState{}
	for k, v := range es {
		out[keyOf(k)] = stateOf(v)
	}
	return out, err
}

// VIPs is every VIP the kernel fences, with the instance it belongs to.
func (d *Datapath) VIPs() (map[netip.Addr]Key, error) {
	es, err := d.vipEntries()
	out := map[netip.Addr]Key{}
	for vk, owner := range es {
		k := keyOf(owner)
		out[k.addrOf(vk.Addr)] = k
	}
	return out, err
}
