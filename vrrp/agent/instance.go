package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// instance is one vrrp_instance at run time.
type instance struct {
	cfg    *config.Instance
	m      *vrrp.Machine
	ifi    *net.Interface
	up     bool
	key    loader.InstanceKey
	kernel loader.Instance
	vips   []vip
	sender *sender
	advert vrrp.Advert
	// resume: the previous run left this instance MASTER with a lease that
	// has not run out, so it starts as master and keeps its VIPs.
	resume bool

	garpAt    time.Duration // next gratuitous ARP burst, 0: none
	garpLeft  int           // ARPs per VIP in that burst
	garpBurst int           // bursts sent since becoming master
	// lowerGarpNext: no gratuitous ARP burst for a lower-priority master
	// before this.
	lowerGarpNext time.Duration

	// flushing: queued on the agent for the next flush; renew: the advert
	// queued renews the lease once it has left.
	flushing, renew bool
	queuedAt        time.Duration // when the advert to flush was queued
	// sendFault says why adverts cannot leave, until sendFaultUntil, when
	// the instance leaves FAULT to try again; sendFailRun counts adverts in a
	// row that did not leave.
	sendFault      string
	sendFaultUntil time.Duration
	sendFailRun    int
	sendErrors     uint64        // refused sends, all told
	sendLogAt      time.Duration // no send error logged before this
	sendLogMuted   int           // send errors not logged since the last one

	// gone: the interface was deleted. rebindErr says why its new
	// incarnation could not be used yet; rebind is retried at rebindAt.
	gone      bool
	rebindErr string
	rebindAt  time.Duration
}

func (a *Agent) newInstance(in *config.Instance) (*instance, error) {
	inst := &instance{cfg: in}
	if err := a.bind(inst); err != nil {
		return nil, err
	}
	inst.advert = vrrp.Advert{Version: in.Version, VRID: in.VRID, Interval: in.Interval}
	if in.Version == 2 {
		inst.advert.AuthType = in.AuthType
		if in.AuthType == vrrp.AuthPass {
			inst.advert.AuthData = vrrp.Password(in.AuthPass)
		}
	}
	for _, v := range in.VIPs {
		inst.advert.Addrs = append(inst.advert.Addrs, v.Prefix.Addr())
	}
	if err := fitsMTU(inst); err != nil {
		return nil, err
	}
	inst.m = vrrp.NewMachine(vrrp.Params{
		Version:      in.Version,
		Priority:     in.Priority,
		Interval:     in.Interval,
		Addr:         inst.sender.src,
		NoPreempt:    !in.Preempt,
		PreemptDelay: in.PreemptDelay,
		DownAdverts:  in.DownTimerAdverts,
	})

	// What the kernel checks adverts against.
	k := loader.Instance{
		Version:       in.Version,
		AuthType:      in.AuthType,
		State:         loader.StateInit,
		Priority:      in.Priority,
		MinIntervalCs: 1,
		MaxIntervalCs: 4095,
	}
	if in.Version == 2 {
		k.AuthData = inst.advert.AuthData
		// RFC 3768: an advert whose interval differs from ours is dropped.
		cs := uint16(in.Interval / vrrp.IntervalUnitV3)
		k.MinIntervalCs, k.MaxIntervalCs = cs, cs
	}
	if len(in.UnicastPeers) > 0 {
		k.Flags |= loader.FlagUnicast
	}
	if !in.Accept {
		k.Flags |= loader.FlagNoAccept
	}

	// A previous run may have left this instance master with a lease still
	// running (a restart): then keep its VIPs and carry on as master. Any other
	// VIP of ours on the interface is a crash's leftover, and goes.
	if prev, err := a.dp.Instance(inst.key); err == nil && prev.State == loader.StateMaster &&
		time.Duration(prev.LeaseUntilNs) > a.now() {
		inst.resume = true
		k.State, k.LeaseUntilNs = prev.State, prev.LeaseUntilNs
		a.log.Info(fmt.Sprintf("(%s) adopting mastership within the previous run's lease", in.Name),
			"lease_left", time.Duration(prev.LeaseUntilNs)-a.now())
	} else {
		for _, v := range inst.vips {
			if v.present() {
				a.log.Warn(fmt.Sprintf("(%s) removing VIP %v left by an earlier run", in.Name, v))
				if err := v.del(); err != nil {
					return nil, err
				}
			}
		}
	}
	inst.kernel = k
	if err := a.putKernelEntries(inst); err != nil {
		return nil, err
	}
	return inst, nil
}

// bind resolves everything of the instance that depends on its interface as
// it is now: index and link state, the kernel's key, the VIPs' links, where
// adverts go and come from, and the socket they leave by. It runs at start and
// again when the interface is re-created under the same name.
func (a *Agent) bind(inst *instance) error {
	in := inst.cfg
	ifi, err := net.InterfaceByName(in.Interface)
	if err != nil {
		return fmt.Errorf("interface %s: %w", in.Interface, err)
	}
	lnk, err := a.nl.LinkByIndex(ifi.Index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", in.Interface, err)
	}
	family := loader.FamilyIPv4
	if in.Family == config.IPv6 {
		family = loader.FamilyIPv6
	}
	var vips []vip
	vipSet := map[netip.Addr]bool{}
	for _, v := range in.VIPs {
		vv, err := a.vipOf(in, v, lnk)
		if err != nil {
			return err
		}
		vips = append(vips, vv)
		vipSet[v.Prefix.Addr()] = true
	}

	// Where adverts go and come from.
	var dsts []netip.Addr
	group := in.McastDstIP // mcast_dst_ip, else the global group: config resolves it
	configuredSrc := in.McastSrcIP
	if len(in.UnicastPeers) > 0 {
		for _, p := range in.UnicastPeers {
			dsts = append(dsts, p.Addr)
		}
		if in.UnicastSrcIP.IsValid() {
			configuredSrc = in.UnicastSrcIP
		}
	} else {
		dsts = []netip.Addr{group}
	}
	fam := 4
	if in.Family == config.IPv6 {
		fam = 6
	}
	src, err := sourceAddr(ifi, fam, len(in.UnicastPeers) > 0, configuredSrc, vipSet)
	if err != nil {
		return err
	}
	sock, err := a.socket(ifi, src)
	if err != nil {
		return err
	}
	if len(in.UnicastPeers) == 0 {
		if err := sock.join(group); err != nil {
			return err
		}
	}
	inst.ifi, inst.up, inst.vips = ifi, linkUp(lnk.Attrs()), vips
	inst.key = loader.InstanceKey{Ifindex: uint32(ifi.Index), Vrid: in.VRID, Family: family}
	inst.sender = &sender{sock: sock, src: src, dsts: dsts}
	return nil
}

// putKernelEntries writes the instance, its VIPs and its unicast peers to the
// kernel's maps under its key.
func (a *Agent) putKernelEntries(inst *instance) error {
	if err := a.dp.PutInstance(inst.key, inst.kernel); err != nil {
		return fmt.Errorf("kernel instance: %w", err)
	}
	for _, v := range inst.vips {
		if err := a.dp.PutVIP(vipKey(inst.key.Family, v.ip()), inst.key); err != nil {
			return fmt.Errorf("kernel VIP %v: %w", v, err)
		}
	}
	for _, p := range inst.cfg.UnicastPeers {
		if err := a.dp.PutUnicastPeer(unicastKey(inst.key, p.Addr)); err != nil {
			return fmt.Errorf("kernel unicast peer %v: %w", p.Addr, err)
		}
	}
	return nil
}

// deleteKernelEntries removes what putKernelEntries wrote under the
// instance's key, and the kernel's record of its peer; VIP entries are keyed by
// address and are rewritten, not removed.
func (a *Agent) deleteKernelEntries(inst *instance) {
	for _, err := range []error{a.dp.DeleteInstance(inst.key), a.dp.DeletePeer(inst.key)} {
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			a.log.Warn(fmt.Sprintf("(%s) remove kernel entries: %v", inst.cfg.Name, err))
		}
	}
	for _, p := range inst.cfg.UnicastPeers {
		if err := a.dp.DeleteUnicastPeer(unicastKey(inst.key, p.Addr)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			a.log.Warn(fmt.Sprintf("(%s) remove kernel entries: %v", inst.cfg.Name, err))
		}
	}
}

func vipKey(family uint8, ip netip.Addr) loader.VIPKey {
	k := loader.VIPKey{Family: family}
	copy(k.Addr[:], ip.AsSlice())
	return k
}

func unicastKey(inst loader.InstanceKey, ip netip.Addr) loader.UnicastKey {
	k := loader.UnicastKey{Instance: inst}
	copy(k.Addr[:], ip.AsSlice())
	return k
}

// vipOf turns a virtual_ipaddress line into the address netlink adds: dev,
// label and scope as written; IPv6 without duplicate address detection, as the
// address moves between routers.
func (a *Agent) vipOf(in *config.Instance, v config.VIP, lnk netlink.Link) (vip, error) {
	if v.Dev != "" && v.Dev != in.Interface {
		l, err := a.nl.LinkByName(v.Dev)
		if err != nil {
			return vip{}, fmt.Errorf("VIP %v: dev %s: %w", v.Prefix, v.Dev, err)
		}
		lnk = l
	}
	bits := v.Prefix.Bits()
	p := v.Prefix
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(bits, p.Addr().BitLen())}, Label: v.Label}
	switch v.Scope {
	case "", "global", "universe":
	case "host":
		addr.Scope = unix.RT_SCOPE_HOST
	case "link":
		addr.Scope = unix.RT_SCOPE_LINK
	case "site":
		addr.Scope = unix.RT_SCOPE_SITE
	case "nowhere":
		addr.Scope = unix.RT_SCOPE_NOWHERE
	default:
		var n int
		if _, err := fmt.Sscan(v.Scope, &n); err != nil {
			return vip{}, fmt.Errorf("VIP %v: scope %q", v.Prefix, v.Scope)
		}
		addr.Scope = n
	}
	if p.Addr().Is6() {
		addr.Flags |= unix.IFA_F_NODAD
	}
	if v.NoPrefixRt {
		addr.Flags |= unix.IFA_F_NOPREFIXROUTE
	}
	return vip{nl: a.nl, link: lnk, addr: addr}, nil
}

// fitsMTU refuses an instance whose adverts would not fit its interface's MTU:
// fragmented, no router would take them as adverts (the kernel's XDP program
// sees fragments, not adverts), and every backup would become master. Only IPv6
// can reach it: 16 bytes a VIP, about 90 VIPs at an MTU of 1500.
func fitsMTU(inst *instance) error {
	hdr := 20 // IPv4 header
	per := 4
	if inst.cfg.Family == config.IPv6 {
		hdr, per = 40, 16
	}
	size := hdr + inst.advert.Len()
	if mtu := inst.ifi.MTU; size > mtu {
		fit := (mtu - hdr - (inst.advert.Len() - per*len(inst.advert.Addrs))) / per
		return fmt.Errorf("%v: %d %v VIPs make an advert of %d bytes, more than the MTU of %s (%d) carries unfragmented: at most %d VIPs per instance there; split them over instances",
			inst.cfg.Pos, len(inst.advert.Addrs), inst.cfg.Family, size, inst.ifi.Name, mtu, fit)
	}
	return nil
}
