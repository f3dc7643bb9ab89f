package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// validate checks what single keywords cannot: families, versions, intervals,
// references between blocks, and duplicates. It fills in derived settings.
func (p *parser) validate() {
	c := p.cfg
	p.uniqueNames()
	for _, in := range c.Instances {
		p.validateInstance(in)
	}
	p.validateSyncGroups()
	p.uniqueVRIDs()
	p.addrVMACs()
	var programs []*Script
	for _, s := range c.Scripts {
		if s.Command != nil {
			programs = append(programs, s)
		}
	}
	if len(programs) > 0 && !c.Global.EnableScriptSecurity {
		p.diags.warnf(programs[0].Pos, "scripts will run without enable_script_security: keepalived calls this a SECURITY VIOLATION; set it in global_defs")
	}
	if c.Global.EnableScriptSecurity {
		for _, k := range p.commands {
			if k.cmd.NeedsShell() {
				p.diags.errorf(k.cmd.Pos, "%s: %q needs a shell, and enable_script_security cannot check the programs a shell line runs: put the line in a script and give its path", k.key, k.cmd.Line)
			}
		}
	}
}

func (p *parser) uniqueNames() {
	c := p.cfg
	unique(p, "vrrp_script", c.Scripts, func(s *Script) (string, Pos) { return s.Name, s.Pos })
	unique(p, "vrrp_instance", c.Instances, func(i *Instance) (string, Pos) { return i.Name, i.Pos })
	unique(p, "vrrp_sync_group", c.SyncGroups, func(g *SyncGroup) (string, Pos) { return g.Name, g.Pos })
	unique(p, "track_file", c.TrackFiles, func(t *TrackFile) (string, Pos) { return t.Name, t.Pos })
	unique(p, "vrrp_track_process", c.TrackProcesses, func(t *TrackProcess) (string, Pos) { return t.Name, t.Pos })
}

// unique reports every block whose name an earlier block of its kind already has.
func unique[T any](p *parser, kind string, items []T, id func(T) (string, Pos)) {
	first := map[string]Pos{}
	for _, it := range items {
		name, pos := id(it)
		if at, ok := first[name]; ok {
			p.diags.errorf(pos, "%s %s is already defined at %v", kind, name, at)
			continue
		}
		first[name] = pos
	}
}

func (p *parser) validateInstance(in *Instance) {
	g := &p.cfg.Global
	seen := p.explicit[in]
	at := func(key string) Pos {
		if pos, ok := seen[key]; ok {
			return pos
		}
		return in.Pos
	}
	name := "vrrp_instance " + in.Name

	if in.Interface == "" {
		in.Interface = g.DefaultInterface
	}
	if in.Interface == "" {
		p.diags.errorf(in.Pos, "%s has no interface", name)
	}
	if in.VRID == 0 {
		if _, given := seen["virtual_router_id"]; !given {
			p.diags.errorf(in.Pos, "%s has no virtual_router_id (1 to 255)", name)
		}
	}

	// Family: all VIPs of virtual_ipaddress share the first one's family.
	if len(in.VIPs) == 0 && !p.badVIPs[in] {
		p.diags.errorf(at("virtual_ipaddress"), "%s has no virtual_ipaddress: an advert carries at least one address", name)
	} else if len(in.VIPs) > 0 {
		in.Family = familyOf(in.VIPs[0].Prefix.Addr())
		for _, v := range in.VIPs[1:] {
			if familyOf(v.Prefix.Addr()) != in.Family {
				p.diags.errorf(v.Pos, "%s: %v is not %v like the first virtual_ipaddress; put other families in virtual_ipaddress_excluded", name, v.Prefix.Addr(), in.Family)
			}
		}
		if len(in.VIPs) > 255 {
			p.diags.errorf(at("virtual_ipaddress"), "%s: %d addresses, an advert carries at most 255 (move the rest to virtual_ipaddress_excluded)", name, len(in.VIPs))
		}
	}
	p.duplicateVIPs(in)

	// Version: the instance's, else global; IPv6 always runs version 3.
	if in.Version == 0 {
		in.Version = g.Version
	}
	if in.Family == IPv6 && in.Version == 2 {
		if pos, explicit := seen["version"]; explicit {
			p.diags.warnf(pos, "%s: IPv6 instances always use VRRP version 3 (RFC 5798), as in keepalived", name)
		}
		in.Version = 3
	}

	// Interval, by version.
	switch in.Version {
	case 2:
		if in.Interval%time.Second != 0 || in.Interval < time.Second {
			p.diags.errorf(at("advert_int"), "%s: advert_int %v: VRRP version 2 counts whole seconds (1 to 255); use version 3 for sub-second adverts", name, in.Interval.Seconds())
		}
	case 3:
		if in.Interval%(10*time.Millisecond) != 0 || in.Interval < 10*time.Millisecond || in.Interval > 40950*time.Millisecond {
			p.diags.errorf(at("advert_int"), "%s: advert_int %v: VRRP version 3 counts 10 ms steps from 0.01 to 40.95 s", name, in.Interval.Seconds())
		}
	}

	if in.Liveness != nil && in.Family == IPv6 {
		p.diags.errorf(in.Liveness.Pos, "%s: fast_liveness probes are IPv4 only for now; remove the block from this IPv6 instance", name)
	}

	// Authentication: version 2 only.
	if _, given := seen["authentication"]; given {
		switch {
		case in.Version == 3:
			p.diags.errorf(at("authentication"), "%s: VRRP version 3 has no authentication (RFC 5798); remove the block or use version 2", name)
		case in.AuthType == 0 && in.AuthPass != "":
			p.diags.errorf(at("authentication"), "%s: auth_pass without auth_type PASS", name)
		case in.AuthType == 1 && in.AuthPass == "":
			p.diags.errorf(at("authentication"), "%s: auth_type PASS needs auth_pass", name)
		}
	}

	// Strict mode: keepalived's vrrp_strict rules, and no accept mode.
	if !in.Strict {
		in.Strict = g.Strict
	}
	if _, given := seen["accept"]; !given && !in.Strict {
		if _, noAccept := seen["no_accept"]; !noAccept {
			in.Accept = true // keepalived's default
		}
	}
	if in.Strict {
		if _, given := seen["accept"]; given {
			p.diags.errorf(at("accept"), "%s: accept mode is not allowed with strict mode", name)
		}
		in.Accept = false
		if len(in.UnicastPeers) > 0 {
			p.diags.errorf(at("unicast_peer"), "%s: unicast peers are not allowed with strict mode", name)
		}
		if in.AuthType != 0 {
			p.diags.errorf(at("authentication"), "%s: authentication is not allowed with strict mode", name)
		}
	}
	if in.Priority == 255 {
		in.Accept = true // the address owner always answers for its addresses
	}
	if _, given := seen["skip_check_adv_addr"]; !given {
		in.SkipCheckAdvAddr = g.SkipCheckAdvAddr
	}
	if _, given := seen["garp_extra_if"]; !given {
		in.GarpExtraIf, in.GarpExtraIfAll = g.GarpExtraIf, g.GarpExtraIfAll
	}
	if _, given := seen["garp_lower_prio_delay"]; !given && !p.lowerPrioDelaySet {
		// keepalived: the second lower-priority burst follows the
		// instance's garp_master_delay unless told otherwise.
		in.Garp.LowerPrioDelay = in.Garp.MasterDelay
	}
	if !in.CheckUnicastSrc {
		in.CheckUnicastSrc = g.CheckUnicastSrc
	}
	if !in.LowerPrioNoAdvert {
		// keepalived: on by default in strict mode.
		_, given := seen["lower_prio_no_advert"]
		in.LowerPrioNoAdvert = g.LowerPrioNoAdvert || in.Strict && !given
	}
	if !in.HigherPrioSendAdvert {
		in.HigherPrioSendAdvert = g.HigherPrioSendAdvert
	}
	if !in.Notify.PriorityChanges {
		in.Notify.PriorityChanges = g.NotifyPriorityChange
	}

	// Preemption, as keepalived: ignored when starting as MASTER.
	if in.State == "MASTER" || in.Priority == 255 {
		why := "state MASTER"
		if in.Priority == 255 {
			why = "priority 255 (the address owner)"
		}
		if pos, given := seen["nopreempt"]; given || !in.Preempt {
			if !given {
				pos = at("no_preempt")
			}
			p.diags.warnf(pos, "%s: nopreempt is ignored with %s", name, why)
			in.Preempt = true
		}
		if in.PreemptDelay > 0 {
			p.diags.warnf(at("preempt_delay"), "%s: preempt_delay is ignored with %s", name, why)
			in.PreemptDelay = 0
		}
	}

	// Addresses.
	for _, key := range []struct {
		addr netip.Addr
		kw   string
	}{{in.UnicastSrcIP, "unicast_src_ip"}, {in.McastSrcIP, "mcast_src_ip"}} {
		if key.addr.IsValid() && in.Family != 0 && familyOf(key.addr) != in.Family {
			p.diags.errorf(at(key.kw), "%s: %s %v is not %v like the instance", name, key.kw, key.addr, in.Family)
		}
	}
	if in.McastDstIP.IsValid() && in.Family != 0 && familyOf(in.McastDstIP) != in.Family {
		p.diags.errorf(at("mcast_dst_ip"), "%s: mcast_dst_ip %v is not %v like the instance", name, in.McastDstIP, in.Family)
	}
	if !in.McastDstIP.IsValid() {
		in.McastDstIP = g.McastGroup4
		if in.Family == IPv6 {
			in.McastDstIP = g.McastGroup6
		}
	}
	peers := map[netip.Addr]bool{}
	for _, u := range in.UnicastPeers {
		if in.Family != 0 && familyOf(u.Addr) != in.Family {
			p.diags.errorf(at("unicast_peer"), "%s: unicast_peer %v is not %v like the instance", name, u.Addr, in.Family)
		}
		if peers[u.Addr] {
			p.diags.errorf(at("unicast_peer"), "%s: unicast_peer %v is listed twice", name, u.Addr)
		}
		peers[u.Addr] = true
		if u.MinTTL != 0 || u.MaxTTL != 0 {
			in.CheckUnicastSrc = true // keepalived: min_ttl/max_ttl turn it on
		}
	}
	if in.UnicastFaultNoPeer && len(in.UnicastPeers) == 0 {
		p.diags.warnf(at("unicast_fault_no_peer"), "%s: unicast_fault_no_peer without unicast peers: the instance stays in FAULT", name)
	}

	for _, t := range in.TrackInterfaces {
		if t.Name == in.Interface {
			p.diags.warnf(t.Pos, "%s: track_interface %s is the instance's own interface, tracked anyway; ignored as in keepalived", name, t.Name)
		}
	}
	in.TrackInterfaces = slices.DeleteFunc(in.TrackInterfaces, func(t TrackInterface) bool { return t.Name == in.Interface })

	p.trackerRefs(name, in.TrackScripts, in.TrackFiles, in.TrackProcesses)
	p.vmac(in, at)
}

// vmac checks use_vmac and fills in keepalived's defaults: the interface is
// named vmac_prefix.VRID ("vrrp.51"), its MAC is the RFC's virtual router MAC,
// 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID), and a MAC of five octets
// takes the VRID as its sixth.
func (p *parser) vmac(in *Instance, at func(string) Pos) {
	name := in.Name
	if !in.UseVMAC {
		if in.VMACXmitBase {
			p.diags.warnf(at("vmac_xmit_base"), "%s: vmac_xmit_base without use_vmac: adverts go from %s anyway", name, in.Interface)
		}
		return
	}
	if len(in.UnicastPeers) > 0 && !in.VMACXmitBase {
		p.diags.errorf(at("use_vmac"), "%s: use_vmac with unicast peers needs vmac_xmit_base, as in keepalived", name)
	}
	if in.Strict && in.VMACXmitBase {
		p.diags.errorf(at("vmac_xmit_base"), "%s: vmac_xmit_base is not allowed with strict mode, as in keepalived", name)
	}
	if in.VMACName == "" {
		prefix := p.cfg.Global.VMACPrefix
		if prefix == "" {
			prefix = "vrrp"
		}
		in.VMACName = fmt.Sprintf("%s.%d", prefix, in.VRID)
	}
	if len(in.VMACName) > 15 || strings.ContainsAny(in.VMACName, "/ \t") || in.VMACName == "." || in.VMACName == ".." {
		p.diags.errorf(at("use_vmac"), "%s: use_vmac: '%s' is not an interface name (at most 15 characters, no '/' or spaces)", name, in.VMACName)
	}
	if in.VMACName == in.Interface {
		p.diags.errorf(at("use_vmac"), "%s: use_vmac: the VMAC cannot be the instance's interface %s", name, in.Interface)
	}
	mac := in.VMACAddr
	if mac == "" {
		mac = "00:00:5e:00:01"
		if in.Family == IPv6 {
			mac = "00:00:5e:00:02"
		}
	}
	if strings.Count(mac, ":") == 4 {
		mac += fmt.Sprintf(":%02x", in.VRID)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 || hw[0]&1 != 0 || !slices.ContainsFunc(hw, func(b byte) bool { return b != 0 }) {
		p.diags.errorf(at("use_vmac"), "%s: use_vmac: '%s' is not a unicast MAC address (six octets, or five and the VRID)", name, in.VMACAddr)
		return
	}
	in.VMACAddr = hw.String()
}

// trackerRefs checks that every tracked script, file and process is defined.
func (p *parser) trackerRefs(owner string, scripts, files, procs []TrackRef) {
	c := p.cfg
	for _, r := range []struct {
		kw, block string
		refs      []TrackRef
		exists    func(string) bool
	}{
		{"track_script", "vrrp_script", scripts, func(n string) bool { return c.Script(n) != nil }},
		{"track_file", "vrrp_track_file", files, func(n string) bool { return c.TrackFile(n) != nil }},
		{"track_process", "vrrp_track_process", procs, func(n string) bool { return c.TrackProcess(n) != nil }},
	} {
		for _, t := range r.refs {
			if !r.exists(t.Name) {
				p.diags.errorf(t.Pos, "%s: %s %s: no %s of that name", owner, r.kw, t.Name, r.block)
			}
		}
	}
}

func (p *parser) duplicateVIPs(in *Instance) {
	first := map[netip.Addr]Pos{}
	in.VIPs = p.dedupVIPs(in, first, in.VIPs)
	in.ExcludedVIPs = p.dedupVIPs(in, first, in.ExcludedVIPs)
}

func (p *parser) dedupVIPs(in *Instance, first map[netip.Addr]Pos, vips []VIP) []VIP {
	out := vips[:0]
	for _, v := range vips {
		if at, ok := first[v.Prefix.Addr()]; ok {
			// keepalived adds the address once and carries on; so does xvrrp.
			p.diags.warnf(v.Pos, "vrrp_instance %s: %v is already listed at %v; this line is ignored", in.Name, v.Prefix.Addr(), at)
			continue
		}
		first[v.Prefix.Addr()] = v.Pos
		out = append(out, v)
	}
	return out
}

// uniqueVRIDs: two instances on one interface and family with one VRID would read
// each other's adverts. keepalived allows them when their unicast peers or
// multicast groups keep them apart; xvrrp's kernel keeps one instance per
// interface, VRID and family, so it refuses them rather than let one silently
// shadow the other.
func (p *parser) uniqueVRIDs() {
	type key struct {
		iface  string
		family Family
		vrid   uint8
	}
	seen := map[key][]*Instance{}
	for _, in := range p.cfg.Instances {
		if in.VRID == 0 || in.Family == 0 {
			continue
		}
		k := key{in.Interface, in.Family, in.VRID}
		for _, other := range seen[k] {
			why := ""
			if apart(in, other) {
				why = " (keepalived allows it with other unicast peers or mcast_dst_ip; xvrrp runs one instance per interface, VRID and family)"
			}
			p.diags.errorf(in.Pos, "vrrp_instance %s: VRID %d on %s (%v) is already used by vrrp_instance %s at %v%s", in.Name, in.VRID, in.Interface, in.Family, other.Name, other.Pos, why)
		}
		seen[k] = append(seen[k], in)
	}
	// The same VIP in two instances would be added by both.
	owner := map[netip.Addr]*Instance{}
	for _, in := range p.cfg.Instances {
		for _, v := range slices.Concat(in.VIPs, in.ExcludedVIPs) {
			if o, ok := owner[v.Prefix.Addr()]; ok && o != in {
				p.diags.errorf(v.Pos, "vrrp_instance %s: %v is also a VIP of vrrp_instance %s", in.Name, v.Prefix.Addr(), o.Name)
				continue
			}
			owner[v.Prefix.Addr()] = in
		}
	}
}

func apart(a, b *Instance) bool {
	if len(a.UnicastPeers) > 0 && len(b.UnicastPeers) > 0 {
		for _, x := range a.UnicastPeers {
			for _, y := range b.UnicastPeers {
				if x.Addr == y.Addr {
					return false
				}
			}
		}
		return true
	}
	return len(a.UnicastPeers) == 0 && len(b.UnicastPeers) == 0 && a.McastDstIP != b.McastDstIP
}

func (p *parser) validateSyncGroups() {
	c := p.cfg
	for _, g := range c.SyncGroups {
		name := "vrrp_sync_group " + g.Name
		if len(g.Members) == 0 {
			p.diags.errorf(g.Pos, "%s has no group { … } of instances", name)
			continue
		}
		if len(g.Members) == 1 {
			p.diags.warnf(g.Pos, "%s has only one instance; a sync group syncs two or more", name)
		}
		for _, m := range g.Members {
			in := c.Instance(m)
			switch {
			case in == nil:
				p.diags.errorf(g.Pos, "%s: no vrrp_instance %s", name, m)
			case in.SyncGroup != "":
				p.diags.errorf(g.Pos, "%s: vrrp_instance %s is already in vrrp_sync_group %s", name, m, in.SyncGroup)
			default:
				in.SyncGroup, in.Group = g.Name, g
			}
		}
		p.trackerRefs(name, g.TrackScripts, g.TrackFiles, g.TrackProcesses)
	}
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// addrVMACs gives the addresses that use_vmac_addr (or use_vmac on the
// address) puts on a VMAC of their own — those on another interface than the
// instance's, or of the other family — one VMAC per interface and family,
// named as keepalived 2.2.7 names them (seen by running it): the
// vmac_addr_prefix (else vmac_prefix, else "vrrp"), "6" for IPv6, then ".VRID",
// or with 1, 2, … before the dot when that name is taken.
func (p *parser) addrVMACs() {
	c := p.cfg
	used := map[string]bool{}
	for _, in := range c.Instances {
		if in.UseVMAC {
			used[in.VMACName] = true
		}
	}
	prefix := c.Global.VMACAddrPrefix
	if prefix == "" {
		prefix = c.Global.VMACPrefix
	}
	if prefix == "" {
		prefix = "vrrp"
	}
	for _, in := range c.Instances {
		byKey := map[string]string{}
		place := func(v *VIP) {
			fam := IPv4
			if v.Prefix.Addr().Is6() {
				fam = IPv6
			}
			dev := v.Dev
			if dev == "" {
				dev = in.Interface
			}
			onMain := in.UseVMAC && dev == in.Interface && fam == in.Family
			if !(in.UseVMACAddr || v.UseVMAC) || onMain || (dev == in.Interface && fam == in.Family && !v.UseVMAC) {
				return
			}
			key := fmt.Sprintf("%s/%d", dev, fam)
			if name, ok := byKey[key]; ok {
				v.VMAC = name
				return
			}
			base := prefix
			mac := fmt.Sprintf("00:00:5e:00:01:%02x", in.VRID)
			if fam == IPv6 {
				base += "6"
				mac = fmt.Sprintf("00:00:5e:00:02:%02x", in.VRID)
			}
			name := fmt.Sprintf("%s.%d", base, in.VRID)
			for n := 1; used[name]; n++ {
				name = fmt.Sprintf("%s%d.%d", base, n, in.VRID)
			}
			if len(name) > 15 {
				p.diags.errorf(v.Pos, "%s: the VMAC for %v on %s would be named %s, longer than an interface name can be: set a shorter vmac_addr_prefix", in.Name, v.Prefix, dev, name)
				return
			}
			used[name], byKey[key], v.VMAC = true, name, name
			in.AddrVMACs = append(in.AddrVMACs, AddrVMAC{Name: name, Parent: dev, Family: fam, MAC: mac})
		}
		for i := range in.VIPs {
			place(&in.VIPs[i])
		}
		for i := range in.ExcludedVIPs {
			place(&in.ExcludedVIPs[i])
		}
	}
}
