package agent

import (
	"fmt"
	"net"
	"net/netip"
	"time"

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
	key    loader.Key
	spec   loader.Spec          // what the kernel checks its adverts against
	kstate loader.InstanceState // its state and lease in the kernel
	vips   []vip
	sender *sender
	group  netip.Addr // where multicast adverts go; zero for a unicast instance
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
	counts         agentCounts   // what only the agent counts (counters.go)
	sendLogAt      time.Duration // no send error logged before this
	sendLogMuted   int           // send errors not logged since the last one

	// gone: the interface was deleted. rebindErr says why its new
	// incarnation could not be used yet; rebind is retried at rebindAt.
	gone      bool
	rebindErr string
	rebindAt  time.Duration

	// handoverUntil: the instance left MASTER and the kernel keeps its
	// lease, which ends then, until its successor announces itself
	// (handover.go); 0: no hand-over under way.
	handoverUntil time.Duration
	// excluded are the addresses of virtual_ipaddress_excluded: held while
	// master like the VIPs, never advertised.
	excluded []vip
	// routes and rules are virtual_routes and virtual_rules, installed while
	// master.
	routes []*netlink.Route
	rules  []*netlink.Rule
	// lowerLeft are the rounds of a lower-priority GARP burst still to go,
	// spaced by vrrp_garp_interval, the next at lowerAt (0: none).
	// lowerSecond: a second burst follows, garp_lower_prio_delay after.
	lowerLeft   int
	lowerAt     time.Duration
	lowerSecond bool
	// extraAt is the next garp_extra_if round (0: none).
	extraAt time.Duration
	// srcGone: track_src_ip, and the address adverts go from was removed.
	srcGone bool
	// restored counts addresses and routes put back after something else
	// removed them while master, and VMACs made again after something else
	// deleted them.
	restored uint64
	// vmac is the instance's VMAC interface (use_vmac), nil without;
	// addrVMACs are use_vmac_addr's, by name.
	vmac      *vmacIf
	addrVMACs map[string]*vmacIf

	// The Master_Down_Timer in the kernel (downtimer.go). kernelTimer: its
	// entry is written; armsSince: since when the kernel can arm it (0: it
	// cannot); delegated: the kernel armed it since, and the daemon sleeps
	// through the machine's deadline.
	kernelTimer bool
	armsSince   time.Duration
	delegated   bool

	// prober sends fast_liveness probes while BACKUP; nil without
	// fast_liveness.
	prober *prober
}

// newInstance makes an instance on the host: bound to its interface (bind),
// built (build), and adopting or cleaning what an earlier run left (adopt).
func (a *Agent) newInstance(in *config.Instance) (*instance, error) {
	inst := &instance{cfg: in}
	err := a.bind(inst)
	if err == nil {
		err = build(inst)
	}
	if err == nil {
		err = a.adopt(inst)
	}
	if err != nil {
		a.removeVMAC(inst) // one bind made, if it got that far
		return nil, err
	}
	if l := in.Liveness; l != nil {
		inst.prober = newProber(in.Name, l.Interval, a.dp.LivenessOf, a.log)
		inst.prober.start()
	}
	return inst, nil
}

// build makes what follows from the configuration and the binding alone: the
// advert, the state machine, the spec the kernel checks adverts against.
func build(inst *instance) error {
	in := inst.cfg
	inst.advert = vrrp.Advert{Version: in.Version, VRID: in.VRID, Interval: in.Interval, ChecksumAsV2: in.ChecksumAsV2}
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
		return err
	}
	inst.m = vrrp.NewMachine(vrrp.Params{
		Version:      in.Version,
		Priority:     in.Priority,
		Interval:     in.Interval,
		Addr:         inst.sender.src,
		NoPreempt:    !in.Preempt,
		PreemptDelay: in.PreemptDelay,
		DownAdverts:  in.DownTimerAdverts,

		AlignAdverts:         true,
		LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
		HigherPrioSendAdvert: in.HigherPrioSendAdvert,
	})

	// What the kernel checks adverts against.
	inst.spec = loader.Spec{
		Version:  in.Version,
		AuthType: in.AuthType,
		Interval: in.Interval,
		Unicast:  len(in.UnicastPeers) > 0,
		NoAccept: !in.Accept,
		// keepalived ignores it but for VRRPv3 over IPv4, as the kernel does.
		ChecksumAsV2: in.ChecksumAsV2,
		Liveness:     in.Liveness != nil,
	}
	if in.Version == 2 {
		inst.spec.AuthData = inst.advert.AuthData
	}
	inst.setKernelAddrs()
	inst.kstate = loader.InstanceState{State: vrrp.Init, Priority: in.Priority}
	return nil
}

// adopt takes over what an earlier run left for the instance, then writes it
// to the kernel.
func (a *Agent) adopt(inst *instance) error {
	in := inst.cfg
	// A previous run may have left this instance master with a lease still
	// running (a restart): then keep its VIPs and carry on as master. Any other
	// VIP of ours on the interface is a crash's leftover, and goes.
	if prev, err := a.dp.State(inst.key); err == nil && prev.State == vrrp.Master && prev.LeaseUntil > a.now() {
		inst.resume = true
		inst.kstate = prev
		a.log.Info(fmt.Sprintf("(%s) adopting mastership within the previous run's lease", in.Name),
			"lease_left", prev.LeaseUntil-a.now())
	} else {
		a.delRoutes(inst) // a crash's leftovers, if any
		for _, v := range inst.held() {
			if a.addrs.present(v) {
				a.log.Warn(fmt.Sprintf("(%s) removing VIP %v left by an earlier run", in.Name, v))
				if err := a.addrs.del(v); err != nil {
					return err
				}
			}
		}
	}
	return a.putKernelEntries(inst)
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
	if err := a.ensureVMACs(inst, lnk); err != nil {
		return err
	}
	var vips []vip
	vipSet := map[netip.Addr]bool{}
	for _, v := range in.VIPs {
		vv, err := a.vipOf(in, v, inst.vipLink(lnk, v))
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
	// use_vmac: adverts leave from the VMAC, with its MAC, unless
	// vmac_xmit_base; their source address is the interface's either way.
	sendIfi := ifi
	if inst.vmac != nil && !in.VMACXmitBase {
		sendIfi = inst.vmac.ifi
	}
	sock, err := a.socket(sendIfi, src)
	if err != nil {
		return err
	}
	if len(in.UnicastPeers) == 0 {
		if err := sock.join(group); err != nil {
			return err
		}
	}
	inst.ifi, inst.up, inst.vips = ifi, linkUp(lnk.Attrs()), vips
	if err := a.bindExcluded(inst, lnk); err != nil {
		return err
	}
	inst.group = netip.Addr{}
	if len(in.UnicastPeers) == 0 {
		inst.group = group
	}
	inst.key = loader.Key{Ifindex: ifi.Index, VRID: in.VRID, IPv6: in.Family == config.IPv6}
	inst.sender = &sender{sock: sock, src: src, dsts: dsts}
	if len(in.UnicastPeers) > 0 {
		inst.sender.unicastTTL(in.UnicastTTL)
	}
	return nil
}

// setKernelAddrs tells the kernel's instance what bind found: the group adverts
// must be sent to (multicast instances), our own source address and MAC, so
// that XDP drops adverts to other destinations and our own looped back.
func (in *instance) setKernelAddrs() {
	in.spec.Group, in.spec.Local, in.spec.MAC = in.group, in.sender.src, in.ifi.HardwareAddr
}

// putKernelEntries writes the instance, its VIPs and its unicast peers to the
// kernel under its key.
func (a *Agent) putKernelEntries(inst *instance) error {
	if err := a.dp.SetInstance(inst.key, inst.spec, inst.kstate); err != nil {
		return fmt.Errorf("kernel instance: %w", err)
	}
	a.putDownTimer(inst, a.now())
	for _, v := range inst.held() {
		if err := a.dp.PutVIPOf(inst.key, v.ip()); err != nil {
			return fmt.Errorf("kernel VIP %v: %w", v, err)
		}
	}
	for _, p := range inst.cfg.UnicastPeers {
		if err := a.dp.AllowPeer(inst.key, p.Addr, p.TTL()); err != nil {
			return fmt.Errorf("kernel unicast peer %v: %w", p.Addr, err)
		}
	}
	// keepalived compares every advert's addresses with virtual_ipaddress
	// (skip_check_adv_addr: a new master's only).
	if err := a.dp.CheckAdvertAddrs(inst.key, nil, inst.advert.Addrs, inst.cfg.SkipCheckAdvAddr); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	if inst.cfg.Liveness != nil {
		if err := a.dp.SetLiveness(inst.key, livenessSpec(inst)); err != nil {
			return fmt.Errorf("kernel fast_liveness: %w", err)
		}
	}
	return nil
}

// deleteKernelEntries removes what putKernelEntries wrote under the
// instance's key, and the kernel's record of its peer; VIP entries are keyed by
// address and are rewritten, not removed.
func (a *Agent) deleteKernelEntries(inst *instance) {
	var peers []netip.Addr
	for _, p := range inst.cfg.UnicastPeers {
		peers = append(peers, p.Addr)
	}
	if err := a.dp.Forget(inst.key, peers); err != nil {
		a.log.Warn(fmt.Sprintf("(%s) remove kernel entries: %v", inst.cfg.Name, err))
	}
	if err := a.dp.ForgetAdvertAddrs(inst.key, inst.advert.Addrs); err != nil {
		a.log.Warn(fmt.Sprintf("(%s) remove kernel entries: %v", inst.cfg.Name, err))
	}
}

// vipOf turns a virtual_ipaddress line into the address netlink adds: dev,
// label and scope as written; IPv6 without duplicate address detection, as the
// address moves between routers.
func (a *Agent) vipOf(in *config.Instance, v config.VIP, lnk netlink.Link) (vip, error) {
	if v.VMAC == "" && v.Dev != "" && v.Dev != in.Interface {
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
	vipOptions(v, addr)
	return vip{link: lnk, addr: addr, noTrack: v.NoTrack}, nil
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
