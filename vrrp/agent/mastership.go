package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// What a master holds besides the VIPs its adverts carry: the addresses of
// virtual_ipaddress_excluded, the routes of virtual_routes and the policy
// rules of virtual_rules. They come and go with mastership like the VIPs; the
// excluded addresses are fenced and announced like them, but never advertised.

// bindExcluded resolves the instance's excluded VIPs, routes and rules on the
// host, as bind does its VIPs: names to links, once, so that a takeover pays
// for none of it.
func (a *Agent) bindExcluded(inst *instance, lnk netlink.Link) error {
	var ex []vip
	for _, v := range inst.cfg.ExcludedVIPs {
		vv, err := a.vipOf(inst.cfg, v, inst.vipLink(lnk, v))
		if err != nil {
			return fmt.Errorf("excluded %w", err)
		}
		ex = append(ex, vv)
	}
	var routes []*netlink.Route
	for _, r := range inst.cfg.Routes {
		nr, err := a.routeOf(r)
		if err != nil {
			return fmt.Errorf("%v: virtual_routes %v: %w", r.Pos, r.Dst, err)
		}
		routes = append(routes, nr)
	}
	var rules []*netlink.Rule
	for _, r := range inst.cfg.Rules {
		rules = append(rules, ruleOf(r))
	}
	inst.excluded, inst.routes, inst.rules = ex, routes, rules
	a.promoteSecondaries(inst)
	return nil
}

// promoteSecondaries sets promote_secondaries on the instance's interface, as
// keepalived does: removing a VIP that happens to be the primary address of
// its subnet then promotes another rather than taking every address of that
// subnet with it. The value found is put back at stop (restoreSysctls).
func (a *Agent) promoteSecondaries(inst *instance) {
	if !inst.cfg.PromoteSecondaries {
		return
	}
	if err := a.setSysctl("ipv4/conf/"+inst.ifi.Name+"/promote_secondaries", "1"); err != nil {
		a.log.Warn(fmt.Sprintf("(%s) promote_secondaries: %v", inst.cfg.Name, err))
	}
}

// restoreSysctls puts back what promote_secondaries and use_vmac changed,
// last first, so that of two writes to one path the value found by the first
// stays; a VMAC's own went with it. Then SysctlFile goes: nothing is left to
// put back.
func (a *Agent) restoreSysctls() {
	for _, path := range slices.Backward(a.sysctlOrder) {
		if err := os.WriteFile(path, a.sysctlWas[path], 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn(fmt.Sprintf("put back %s: %v", path, err))
		}
	}
	a.sysctlWas, a.sysctlOrder = nil, nil
	if a.opt.SysctlFile != "" {
		if err := os.Remove(a.opt.SysctlFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("remove the record of sysctls put back", "error", err)
		}
	}
}

var routeTypes = map[string]int{"blackhole": unix.RTN_BLACKHOLE, "unreachable": unix.RTN_UNREACHABLE, "prohibit": unix.RTN_PROHIBIT, "throw": unix.RTN_THROW}

var scopes = map[string]netlink.Scope{"host": netlink.SCOPE_HOST, "link": netlink.SCOPE_LINK, "global": netlink.SCOPE_UNIVERSE,
	"universe": netlink.SCOPE_UNIVERSE, "site": netlink.SCOPE_SITE, "nowhere": netlink.SCOPE_NOWHERE}

// routeOf is a virtual_routes line as netlink adds it, with `ip route`'s
// defaults: a route with a device and no gateway has scope link.
func (a *Agent) routeOf(r config.Route) (*netlink.Route, error) {
	nr := &netlink.Route{Dst: ipNet(r.Dst), Table: r.Table, Priority: r.Metric, Family: unix.AF_INET}
	if r.Dst.Addr().Is6() {
		nr.Family = unix.AF_INET6
	}
	if r.Type != "" {
		nr.Type = routeTypes[r.Type]
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Dev != "" {
		l, err := a.nl.LinkByName(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("dev %s: %w", r.Dev, err)
		}
		nr.LinkIndex = l.Attrs().Index
	}
	switch s, named := scopes[r.Scope]; {
	case named:
		nr.Scope = s
	case r.Scope != "":
		var n int
		fmt.Sscan(r.Scope, &n)
		nr.Scope = netlink.Scope(n)
	case r.Type == "" && !r.Via.IsValid() && r.Dev != "":
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.OnLink {
		nr.Flags |= int(netlink.FLAG_ONLINK)
	}
	return nr, nil
}

func ruleOf(r config.Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Table, nr.Priority, nr.IifName, nr.OifName = r.Table, r.Priority, r.IIf, r.OIf
	if r.Priority == 0 {
		nr.Priority = -1 // the kernel chooses
	}
	nr.Family = unix.AF_INET
	if r.Family == config.IPv6 {
		nr.Family = unix.AF_INET6
	}
	if r.From.IsValid() {
		nr.Src = ipNet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = ipNet(r.To)
	}
	if r.HasFwMark {
		nr.Mark = r.FwMark
		if r.FwMask != 0 {
			mask := r.FwMask
			nr.Mask = &mask
		}
	}
	return nr
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// held is every address the instance holds while master: its VIPs, then its
// excluded VIPs.
func (in *instance) held() []vip {
	if len(in.excluded) == 0 {
		return in.vips
	}
	return append(append(make([]vip, 0, len(in.vips)+len(in.excluded)), in.vips...), in.excluded...)
}

// addRoutes installs a new master's rules and routes, once its addresses are
// up (a route may take a VIP as its source).
func (a *Agent) addRoutes(in *instance) {
	if a.nl == nil {
		return
	}
	for _, r := range in.rules {
		if err := a.nl.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			a.log.Error(fmt.Sprintf("(%s) add rule %v: %v", in.cfg.Name, r, err))
		}
	}
	for _, r := range in.routes {
		if err := a.nl.RouteReplace(r); err != nil {
			a.log.Error(fmt.Sprintf("(%s) add route %v: %v", in.cfg.Name, r, err))
		}
	}
}

// delRoutes removes what addRoutes installed, before the addresses go.
func (a *Agent) delRoutes(in *instance) {
	if a.nl == nil {
		return
	}
	for _, r := range in.routes {
		if err := a.nl.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
			a.log.Error(fmt.Sprintf("(%s) remove route %v: %v", in.cfg.Name, r, err))
		}
	}
	for _, r := range in.rules {
		if err := a.nl.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
			a.log.Error(fmt.Sprintf("(%s) remove rule %v: %v", in.cfg.Name, r, err))
		}
	}
}

// routeRemoved puts back a master's route that something else removed, as
// addrRemoved does its addresses. Its own removals, after leaving MASTER, are
// not a master's.
func (a *Agent) routeRemoved(g addrGone) {
	for _, in := range a.insts {
		if !in.isMaster() {
			continue
		}
		for i, r := range in.routes {
			if in.cfg.Routes[i].NoTrack {
				continue // keepalived's no_track: back at the next mastership
			}
			if !g.resync && (r.Table != g.table && !(r.Table == 0 && g.table == unix.RT_TABLE_MAIN) || !samePrefix(r.Dst, g.dst)) {
				continue
			}
			if routePresent(a.nl, r) {
				continue
			}
			if err := a.nl.RouteReplace(r); err != nil {
				a.log.Error(fmt.Sprintf("(%s) put back route %v: %v", in.cfg.Name, r.Dst, err))
				continue
			}
			in.restored++
			a.log.Warn(fmt.Sprintf("(%s) route %v was removed by something else while master: put back", in.cfg.Name, r.Dst),
				"restored", in.restored)
		}
	}
}

// ruleRemoved puts back a master's policy rules that something else removed,
// as routeRemoved does its routes: any rule removed on the host has every
// master's rules checked (they are few), except those marked no_track.
func (a *Agent) ruleRemoved() {
	if a.nl == nil {
		return
	}
	for _, in := range a.insts {
		if !in.isMaster() {
			continue
		}
		for i, r := range in.rules {
			if in.cfg.Rules[i].NoTrack || rulePresent(a.nl, r) {
				continue
			}
			if err := a.nl.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
				a.log.Error(fmt.Sprintf("(%s) put back rule %s: %v", in.cfg.Name, strings.Join(in.cfg.Rules[i].Words, " "), err))
				continue
			}
			in.restored++
			a.log.Warn(fmt.Sprintf("(%s) rule %s was removed by something else while master: put back", in.cfg.Name,
				strings.Join(in.cfg.Rules[i].Words, " ")), "restored", in.restored)
		}
	}
}

// rulePresent says whether the host has a rule matching r in everything
// ruleOf sets (the priority only when r names one).
func rulePresent(nl *netlink.Handle, r *netlink.Rule) bool {
	found, err := nl.RuleList(r.Family)
	if err != nil {
		return true // cannot tell: adding again would fail or duplicate
	}
	for _, f := range found {
		if f.Table == r.Table && (r.Priority < 0 || f.Priority == r.Priority) && samePrefixOrNone(f.Src, r.Src) &&
			samePrefixOrNone(f.Dst, r.Dst) && f.IifName == r.IifName && f.OifName == r.OifName && f.Mark == r.Mark &&
			(r.Mask == nil || f.Mask != nil && *f.Mask == *r.Mask) {
			return true
		}
	}
	return false
}

// samePrefixOrNone compares a rule's selectors: both absent, or the same
// prefix.
func samePrefixOrNone(a, b *net.IPNet) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return samePrefix(a, b)
}

// samePrefix compares destinations; netlink reports a default route's as nil.
func samePrefix(a, b *net.IPNet) bool {
	if a == nil || b == nil {
		other := a
		if a == nil {
			other = b
		}
		if other == nil {
			return true
		}
		ones, _ := other.Mask.Size()
		return ones == 0
	}
	ao, _ := a.Mask.Size()
	bo, _ := b.Mask.Size()
	return a.IP.Equal(b.IP) && ao == bo
}

func routePresent(nl *netlink.Handle, r *netlink.Route) bool {
	filter := &netlink.Route{Dst: r.Dst, Table: r.Table}
	mask := netlink.RT_FILTER_DST | netlink.RT_FILTER_TABLE
	if r.Table == 0 {
		filter.Table = unix.RT_TABLE_MAIN
	}
	found, err := nl.RouteListFiltered(r.Family, filter, mask)
	return err == nil && len(found) > 0
}

// isMaster says whether the instance holds its addresses now.
func (in *instance) isMaster() bool { return in.m != nil && in.m.State() == vrrp.Master }

// unicastTTL sets what unicast adverts leave with: unicast_ttl, else 255.
// keepalived's unicast peers take any TTL, so a peer routers away can be
// reached; multicast adverts keep 255.
func (s *sender) unicastTTL(ttl int) {
	if ttl == 0 || ttl == vrrp.TTL {
		return
	}
	s.ttl = uint8(ttl)
	if s.src.Is6() {
		s.hopLimit = (&ipv6.ControlMessage{HopLimit: ttl}).Marshal()
	}
}

func (s *sender) ttlTo(dst netip.Addr) uint8 {
	if s.ttl == 0 || dst.IsMulticast() {
		return vrrp.TTL
	}
	return s.ttl
}

// garpSpacing is the time between rounds of gratuitous ARPs (IPv4 instances:
// vrrp_garp_interval) or unsolicited NAs (IPv6: vrrp_gna_interval), 0 for
// back to back. keepalived spaces every message on an interface; xvrrp spaces
// an instance's rounds, one message per address — the same for an instance
// with one VIP.
// A garp_group for the instance's interface sets both instead, unset ones to 0.
func (a *Agent) garpSpacing(in *instance) time.Duration {
	garp, gna := a.cfg.Global.GarpInterval, a.cfg.Global.GnaInterval
	if g := a.cfg.GarpGroupOf(in.cfg.Interface); g != nil {
		garp, gna = g.GarpInterval, g.GnaInterval
	}
	if in.cfg.Family == config.IPv6 {
		return gna
	}
	return garp
}

// announceRound sends one gratuitous ARP or NA for every address held.
func (a *Agent) announceRound(in *instance) {
	for _, v := range in.held() {
		if err := a.addrs.announce(v); err != nil {
			a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		}
	}
}

// lowerRounds sends what is due of a lower-priority burst: all its rounds,
// or one when vrrp_garp_interval spaces them; then schedules the rest, or the
// second burst garp_lower_prio_delay later, as keepalived.
func (a *Agent) lowerRounds(in *instance, now time.Duration) {
	sp := a.garpSpacing(in)
	n := in.lowerLeft
	if sp > 0 {
		n = min(n, 1)
	}
	for range n {
		a.announceRound(in)
	}
	in.lowerLeft -= n
	switch {
	case in.lowerLeft > 0:
		in.lowerAt = now + sp
	case in.lowerSecond:
		g := in.cfg.Garp
		in.lowerLeft, in.lowerSecond, in.lowerAt = g.LowerPrioRepeat, false, now+g.LowerPrioDelay
	default:
		in.lowerAt = 0
	}
}

// lowerDue runs lowerRounds when its time comes, for a master only.
func (a *Agent) lowerDue(in *instance, now time.Duration) {
	in.lowerAt = 0
	if !in.isMaster() || in.lowerLeft <= 0 {
		in.lowerLeft, in.lowerSecond = 0, false
		return
	}
	a.lowerRounds(in, now)
}

// becameMaster installs what a new master holds besides its addresses, and
// starts its periodic gratuitous ARPs on other interfaces.
func (a *Agent) becameMaster(in *instance, now time.Duration) {
	a.addRoutes(in)
	in.extraAt = 0
	if in.cfg.GarpExtraIf > 0 {
		in.extraAt = now + in.cfg.GarpExtraIf
	}
}

// extrasAt is the earliest of the instance's own timers here (0: none).
func (in *instance) extrasAt() time.Duration {
	next := in.lowerAt
	if in.extraAt != 0 && (next == 0 || in.extraAt < next) {
		next = in.extraAt
	}
	return next
}

// extrasDue runs what is due of those timers.
func (a *Agent) extrasDue(in *instance, now time.Duration) {
	if in.lowerAt != 0 && in.lowerAt <= now {
		a.lowerDue(in, now)
	}
	if in.extraAt != 0 && in.extraAt <= now {
		in.extraAt = 0
		if !in.isMaster() {
			return
		}
		// garp_extra_if: switches age out MACs they only see in these.
		for _, v := range in.held() {
			if in.cfg.GarpExtraIfAll || v.link.Attrs().Index != in.ifi.Index {
				if err := a.addrs.announce(v); err != nil {
					a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
				}
			}
		}
		in.extraAt = now + in.cfg.GarpExtraIf
	}
}

// vipOptions applies the address options of a virtual_ipaddress line that
// `ip address add` takes: brd, peer, home, mngtmpaddr, autojoin and
// preferred_lft (0 keeps an IPv6 VIP from being chosen as a source).
func vipOptions(v config.VIP, addr *netlink.Addr) {
	if b, err := netip.ParseAddr(v.Broadcast); err == nil {
		addr.Broadcast = b.AsSlice()
	}
	if v.Peer.IsValid() {
		addr.Peer = &net.IPNet{IP: v.Peer.AsSlice(), Mask: net.CIDRMask(v.Peer.BitLen(), v.Peer.BitLen())}
	}
	if v.Home {
		addr.Flags |= unix.IFA_F_HOMEADDRESS
	}
	if v.MngTmpAddr {
		addr.Flags |= unix.IFA_F_MANAGETEMPADDR
	}
	if v.AutoJoin {
		addr.Flags |= unix.IFA_F_MCAUTOJOIN
	}
	if v.PreferredLFT != "" && v.PreferredLFT != "forever" {
		n, _ := strconv.ParseUint(v.PreferredLFT, 10, 32)
		addr.PreferedLft, addr.ValidLft = int(n), 1<<32-1 // valid forever
	}
}

// trackSrc follows, for the instances with track_src_ip, the address their
// adverts go from: removed, the instance goes to FAULT, as keepalived's; back,
// it leaves it. A resync asks the host.
func (a *Agent) trackSrc(g addrGone) {
	changed := false
	for _, in := range a.insts {
		// keepalived tracks a configured source only.
		configured := in.sender != nil && (in.sender.src == in.cfg.McastSrcIP || in.sender.src == in.cfg.UnicastSrcIP)
		if !in.cfg.TrackSrcIP || !configured || in.sender == nil {
			continue
		}
		gone := in.srcGone
		switch {
		case g.resync:
			gone = !a.hasAddr(in.sender.src)
		case g.addr == in.sender.src:
			gone = !g.added
		}
		if gone != in.srcGone {
			in.srcGone, changed = gone, true
			state := "back"
			if gone {
				state = "removed"
			}
			a.log.Info(fmt.Sprintf("(%s) source address %v %s", in.cfg.Name, in.sender.src, state))
		}
	}
	if changed {
		a.reassess("source address back")
	}
}

func (a *Agent) hasAddr(ip netip.Addr) bool {
	if a.nl == nil {
		return true
	}
	addrs, err := a.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return true // no news is not a removal
	}
	for _, ad := range addrs {
		if x, ok := netip.AddrFromSlice(ad.IP); ok && x.Unmap() == ip {
			return true
		}
	}
	return false
}
