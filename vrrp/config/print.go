package config

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
)

// Tracking is how trackers act on instances, as the daemon judges them:
// package health's Policy, the daemon's own. Print takes it rather than
// judging trackers itself, so that what check prints is what run does.
type Tracking interface {
	// InstanceTrackers are the instance's own trackers as they act on it.
	InstanceTrackers(in *Instance) []Effect
	// GroupTrackers are a sync group's trackers as they act on each member.
	GroupTrackers(g *SyncGroup) []Effect
	// Range is the lowest and highest effective priority the trackers give
	// the instance outside FAULT (0 and 0 when every state of them is a
	// FAULT), and whether they can put it in FAULT.
	Range(in *Instance) (lo, hi uint8, canFault bool)
}

// Effect is one tracker as it acts on an instance.
type Effect struct {
	Keyword string // track_interface, track_script, track_process or track_file
	Name    string
	// Weight is the weight that applies: 0 makes a failure (a track_file: a
	// value other than 0) a FAULT.
	Weight  int
	Reverse bool
}

// Print writes the effective configuration: every instance with what xvrrp will
// run — version, interval, addresses, trackers and the priorities they allow,
// as t judges them.
func (c *Config) Print(w io.Writer, t Tracking) {
	g := c.Global
	fmt.Fprintf(w, "global: router_id %s, VRRP version %d, groups %v %v",
		orDash(g.RouterID), g.Version, g.McastGroup4, g.McastGroup6)
	if g.Strict {
		fmt.Fprint(w, ", strict")
	}
	if g.StartupDelay > 0 {
		fmt.Fprintf(w, ", startup delay %v", g.StartupDelay)
	}
	for _, s := range []struct {
		what string
		c    *Command
		secs int
		when string
	}{{"startup_script", g.StartupScript, g.StartupScriptTimeout, "before the instances start"},
		{"shutdown_script", g.ShutdownScript, g.ShutdownScriptTimeout, "after they stop"}} {
		if s.c != nil {
			fmt.Fprintf(w, ", %s %q %s (killed after %v)", s.what, s.c.Line, s.when, ScriptTimeout(s.secs))
		}
	}
	if g.DynamicInterfaces {
		fmt.Fprint(w, ", an instance whose interface is missing waits for it (dynamic_interfaces)")
	}
	if g.GarpInterval > 0 {
		fmt.Fprintf(w, ", gratuitous ARP rounds %v apart", g.GarpInterval)
	}
	if g.GnaInterval > 0 {
		fmt.Fprintf(w, ", unsolicited NA rounds %v apart", g.GnaInterval)
	}
	fmt.Fprintln(w)
	for _, in := range c.Instances {
		c.printInstance(w, in, t)
	}
	for _, sg := range c.SyncGroups {
		fmt.Fprintf(w, "vrrp_sync_group %s: %s\n", sg.Name, strings.Join(sg.Members, ", "))
		printTrackers(w, t.GroupTrackers(sg))
		printNotify(w, sg.Notify)
	}
	for _, s := range c.Scripts {
		timeout := s.Timeout
		if timeout == 0 {
			timeout = s.Interval
		}
		kind, what := "vrrp_script", s.Command.lineOrEmpty()
		if s.Check != nil {
			kind, what = "xvrrp_check", s.Check.Kind+" "+s.Check.Target
			if s.Check.Kind == CheckHTTP {
				what += fmt.Sprintf(" (status %d)", s.Check.Status)
			}
		}
		fmt.Fprintf(w, "%s %s: %q every %v, timeout %v, weight %d%s, rise %d, fall %d\n",
			kind, s.Name, what, s.Interval, timeout, s.Weight, rev(s.Reverse), s.Rise, s.Fall)
	}
	for _, t := range c.TrackFiles {
		fmt.Fprintf(w, "track_file %s: %s, weight %d%s\n", t.Name, t.File, t.Weight, rev(t.Reverse))
	}
	for _, t := range c.TrackProcesses {
		fmt.Fprintf(w, "vrrp_track_process %s: %s %s, quorum %d, weight %d%s\n", t.Name, t.Process, t.Params, t.Quorum, t.Weight, rev(t.Reverse))
	}
}

func (c *Config) printInstance(w io.Writer, in *Instance, t Tracking) {
	state := in.State
	if state == "" {
		state = "BACKUP"
	}
	fmt.Fprintf(w, "vrrp_instance %s (%v)\n", in.Name, in.Pos)
	fmt.Fprintf(w, "  %s VRID %d %v VRRPv%d, advert every %v, Master_Down %v, initial state %s\n",
		in.Interface, in.VRID, in.Family, in.Version, in.Interval, in.MasterDown(in.Priority), state)
	lo, hi, canFault := t.Range(in)
	fmt.Fprintf(w, "  priority %d", in.Priority)
	switch {
	case hi == 0:
		fmt.Fprint(w, ", always FAULT: no state of its trackers lets it run")
	case lo != hi || lo != in.Priority:
		fmt.Fprintf(w, " (effective %d to %d with trackers)", lo, hi)
	}
	if canFault && hi != 0 {
		fmt.Fprint(w, ", FAULT when its trackers say so")
	}
	fmt.Fprintln(w)
	mode := "preempt"
	switch {
	case !in.Preempt:
		mode = "nopreempt"
	case in.PreemptDelay > 0:
		mode = fmt.Sprintf("preempt after %v", in.PreemptDelay)
	}
	accept := "accept"
	if !in.Accept {
		accept = "no_accept"
	}
	fmt.Fprintf(w, "  %s, %s", mode, accept)
	if in.AuthType == 1 {
		fmt.Fprint(w, ", auth PASS")
	}
	if in.SyncGroup != "" {
		fmt.Fprintf(w, ", sync group %s", in.SyncGroup)
	}
	fmt.Fprintln(w)
	if len(in.UnicastPeers) > 0 {
		peers := make([]string, len(in.UnicastPeers))
		for i, u := range in.UnicastPeers {
			peers[i] = u.Addr.String()
		}
		src := "the interface's address"
		if in.UnicastSrcIP.IsValid() {
			src = in.UnicastSrcIP.String()
		}
		ttl := in.UnicastTTL
		if ttl == 0 {
			ttl = 255
		}
		// Sources are checked whatever check_unicast_src says: XDP drops
		// adverts from other sources, as keepalived does with it.
		anyTTL := "any TTL"
		if slices.ContainsFunc(in.UnicastPeers, UnicastPeer.TTLChecked) {
			anyTTL = "any TTL unless narrowed below"
		}
		fmt.Fprintf(w, "  unicast from %s to %s, sent at TTL %d, peers' adverts taken at %s, from them only\n", src, strings.Join(peers, ", "), ttl, anyTTL)
		for _, u := range in.UnicastPeers {
			if u.TTLChecked() {
				fmt.Fprintf(w, "  adverts from %v taken only at TTL %d to %d, others dropped and counted as ttl (min_ttl, max_ttl)\n", u.Addr, u.MinTTL, u.MaxTTL)
			}
		}
	} else {
		fmt.Fprintf(w, "  multicast to %v\n", in.McastDstIP)
	}
	if in.SkipCheckAdvAddr {
		fmt.Fprintln(w, "  adverts must carry exactly its virtual_ipaddress list, checked for a new master's only (skip_check_adv_addr)")
	} else {
		fmt.Fprintln(w, "  adverts must carry exactly its virtual_ipaddress list, or are dropped as addr_count")
	}
	if in.DontTrackPrimary {
		fmt.Fprintf(w, "  %s down is no FAULT; the VIPs are fenced while adverts cannot leave (dont_track_primary)\n", in.Interface)
	}
	if in.ChecksumAsV2 {
		if in.Version == 3 && in.Family == IPv4 {
			fmt.Fprintln(w, "  VRRPv3 checksum over the message alone, no IPv4 pseudo-header: sent so, and adverts with the pseudo-header form dropped as checksum (v3_checksum_as_v2)")
		} else {
			fmt.Fprintln(w, "  v3_checksum_as_v2 changes nothing here: it is for VRRPv3 over IPv4")
		}
	}
	src := in.McastSrcIP
	if len(in.UnicastPeers) > 0 && in.UnicastSrcIP.IsValid() {
		src = in.UnicastSrcIP
	}
	if in.TrackSrcIP && src.IsValid() {
		fmt.Fprintf(w, "  FAULT while %v is not on the host (track_src_ip)\n", src)
	}
	if in.PromoteSecondaries {
		fmt.Fprintf(w, "  promote_secondaries set on %s while running\n", in.Interface)
	}
	printVMAC(w, in)
	if l := in.Liveness; l != nil {
		fmt.Fprintf(w, "  fast_liveness: as backup, probes the master every %v (UDP port 7112, from the kernel's record of its adverts) and takes over once %d in a row go unanswered (looked at %v after the last reply), armed only after the master's first reply; as master, its XDP answers probes while its lease runs\n",
			l.Interval, l.Multiplier, vrrp.LivenessTimeout(l.Interval, l.Multiplier, in.Priority))
	}
	printGarp(w, in.Garp)
	if g := c.GarpGroupOf(in.Interface); g != nil {
		fmt.Fprintf(w, "  rounds of gratuitous ARPs %v apart, of unsolicited NAs %v apart (garp_group %s)\n", g.GarpInterval, g.GnaInterval, g.Interface)
	}
	if in.GarpExtraIf > 0 {
		which := "on interfaces other than " + in.Interface
		if in.GarpExtraIfAll {
			which = "for every address"
		}
		fmt.Fprintf(w, "  while master, a gratuitous ARP every %v %s (garp_extra_if)\n", in.GarpExtraIf, which)
	}
	if in.LowerPrioNoAdvert {
		fmt.Fprintln(w, "  as master, no advert in answer to a lower priority master's (lower_prio_no_advert)")
	}
	if in.HigherPrioSendAdvert {
		fmt.Fprintln(w, "  as master, one advert before stepping down for a higher priority (higher_prio_send_advert)")
	}
	for _, v := range in.VIPs {
		fmt.Fprintf(w, "  VIP %s%s\n", v, putBack(v.NoTrack, " (", ")"))
	}
	for _, v := range in.ExcludedVIPs {
		fmt.Fprintf(w, "  VIP %s (not advertised; held while master, %s)\n", v, putBack(v.NoTrack, "", ""))
	}
	for _, r := range in.Routes {
		fmt.Fprintf(w, "  route %s (installed while master, %s)\n", strings.Join(r.Words, " "), putBack(r.NoTrack, "", ""))
	}
	for _, r := range in.Rules {
		fmt.Fprintf(w, "  rule %s (installed while master, %s)\n", strings.Join(r.Words, " "), putBack(r.NoTrack, "", ""))
	}
	printTrackers(w, t.InstanceTrackers(in))
	printNotify(w, in.Notify)
}

// putBack says what becomes of an address, route or rule removed behind a
// master's back; a VIP says it only when no_track changes it.
func putBack(noTrack bool, open, closing string) string {
	if noTrack {
		return open + "if removed, not put back until the next mastership (no_track)" + closing
	}
	if open != "" {
		return ""
	}
	return "put back if removed"
}

func printTrackers(w io.Writer, effects []Effect) {
	for _, e := range effects {
		fmt.Fprintf(w, "  %s %s%s\n", e.Keyword, e.Name, effectText(e))
	}
}

func effectText(e Effect) string {
	switch {
	case e.Weight != 0:
		return fmt.Sprintf(" weight %+d%s", e.Weight, rev(e.Reverse))
	case e.Keyword == "track_file":
		return " (FAULT unless 0)"
	case e.Reverse:
		return " (FAULT when up) reverse"
	}
	return " (FAULT when down)"
}

func printNotify(w io.Writer, n Notify) {
	for _, x := range []struct {
		name string
		c    *Command
	}{{"notify_master", n.Master}, {"notify_backup", n.Backup}, {"notify_fault", n.Fault},
		{"notify_stop", n.Stop}, {"notify", n.Any}, {"notify_master_rx_lower_pri", n.MasterRxLowerPri}} {
		if x.c != nil {
			fmt.Fprintf(w, "  %s %q\n", x.name, x.c.Line)
		}
	}
}

func (v VIP) String() string {
	var b strings.Builder
	b.WriteString(v.Prefix.String())
	for _, kv := range [][2]string{{"dev", v.Dev}, {"label", v.Label}, {"scope", v.Scope}, {"brd", v.Broadcast}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s %s", kv[0], kv[1])
		}
	}
	if v.Peer.IsValid() {
		fmt.Fprintf(&b, " peer %v", v.Peer)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{v.Home, "home"}, {v.MngTmpAddr, "mngtmpaddr"}, {v.AutoJoin, "autojoin"}, {v.NoPrefixRt, "noprefixroute"}, {v.NoTrack, "no_track"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if v.PreferredLFT != "" {
		b.WriteString(" preferred_lft " + v.PreferredLFT)
	}
	return b.String()
}

func (c *Command) lineOrEmpty() string {
	if c == nil {
		return ""
	}
	return c.Line
}

func rev(r bool) string {
	if r {
		return " reverse"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SkewTime is the instance's Skew_Time for a priority (vrrp.SkewTime).
func (in *Instance) SkewTime(priority uint8) time.Duration {
	return vrrp.SkewTime(in.Version, priority, in.Interval)
}

// MasterDown is the instance's Master_Down_Interval for a priority, with its
// down_timer_adverts (vrrp.MasterDownInterval).
func (in *Instance) MasterDown(priority uint8) time.Duration {
	return vrrp.MasterDownInterval(in.Version, priority, in.Interval, in.DownTimerAdverts)
}

// printGarp says when a master sends gratuitous ARPs (unsolicited NAs).
func printGarp(w io.Writer, g Garp) {
	fmt.Fprintf(w, "  gratuitous ARPs: %d on becoming master", max(1, g.MasterRepeat))
	if g.MasterDelay > 0 {
		fmt.Fprintf(w, ", %d after %v", max(1, g.MasterRepeat), g.MasterDelay)
	}
	if g.MasterRefresh > 0 {
		fmt.Fprintf(w, ", %d every %v", max(1, g.MasterRefreshRepeat), g.MasterRefresh)
	}
	if g.LowerPrioRepeat > 0 {
		fmt.Fprintf(w, "; %d on hearing a lower priority master", g.LowerPrioRepeat)
		if g.LowerPrioDelay > 0 {
			fmt.Fprintf(w, ", %d after %v", g.LowerPrioRepeat, g.LowerPrioDelay)
		}
	}
	fmt.Fprintln(w)
}

// printVMAC says what use_vmac and vmac_xmit_base will do.
func printVMAC(w io.Writer, in *Instance) {
	for _, av := range in.AddrVMACs {
		var addrs []string
		for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
			if v.VMAC == av.Name {
				addrs = append(addrs, v.Prefix.String())
			}
		}
		fmt.Fprintf(w, "  VMAC %s, MAC %s: a private macvlan on %s for %s, made at start, removed at stop (use_vmac_addr)\n",
			av.Name, av.MAC, av.Parent, strings.Join(addrs, ", "))
	}
	if !in.UseVMAC {
		return
	}
	fmt.Fprintf(w, "  VMAC %s, MAC %s: a private macvlan on %s, made at start (or taken over), up in every state, removed at stop (use_vmac)\n",
		in.VMACName, in.VMACAddr, in.Interface)
	fmt.Fprintf(w, "    carries the VIPs of the instance's family with no other dev; gratuitous ARPs/NAs from it\n")
	if in.VMACXmitBase {
		fmt.Fprintf(w, "    adverts from %s with its own MAC (vmac_xmit_base)\n", in.Interface)
	} else {
		fmt.Fprintf(w, "    adverts from %s with MAC %s, source address %s's\n", in.VMACName, in.VMACAddr, in.Interface)
	}
	fmt.Fprintf(w, "    sets arp_ignore=1 arp_filter=1 on %s, arp_ignore=1 accept_local=1 promote_secondaries=1 on %s; %s's put back at stop\n",
		in.Interface, in.VMACName, in.Interface)
}
