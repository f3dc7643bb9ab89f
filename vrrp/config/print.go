package config

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
)

// Print writes the effective configuration: every instance with what xvrrp will
// run — version, interval, addresses, trackers and the priorities they allow.
func (c *Config) Print(w io.Writer) {
	g := c.Global
	fmt.Fprintf(w, "global: router_id %s, VRRP version %d, groups %v %v",
		orDash(g.RouterID), g.Version, g.McastGroup4, g.McastGroup6)
	if g.Strict {
		fmt.Fprint(w, ", strict")
	}
	if g.StartupDelay > 0 {
		fmt.Fprintf(w, ", startup delay %v", g.StartupDelay)
	}
	fmt.Fprintln(w)
	for _, in := range c.Instances {
		c.printInstance(w, in)
	}
	for _, sg := range c.SyncGroups {
		fmt.Fprintf(w, "vrrp_sync_group %s: %s\n", sg.Name, strings.Join(sg.Members, ", "))
		printTrackers(w, c, sg.TrackInterfaces, sg.TrackScripts, sg.TrackFiles, sg.TrackProcesses)
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

func (c *Config) printInstance(w io.Writer, in *Instance) {
	state := in.State
	if state == "" {
		state = "BACKUP"
	}
	fmt.Fprintf(w, "vrrp_instance %s (%v)\n", in.Name, in.Pos)
	fmt.Fprintf(w, "  %s VRID %d %v VRRPv%d, advert every %v, Master_Down %v, initial state %s\n",
		in.Interface, in.VRID, in.Family, in.Version, in.Interval, in.MasterDown(in.Priority), state)
	lo, hi := c.PriorityRange(in)
	fmt.Fprintf(w, "  priority %d", in.Priority)
	if lo != hi || lo != int(in.Priority) {
		fmt.Fprintf(w, " (effective %d to %d with trackers)", lo, hi)
	}
	if c.CanFault(in) {
		fmt.Fprint(w, ", FAULT when an unweighted tracker fails")
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
		fmt.Fprintf(w, "  unicast from %s to %s\n", src, strings.Join(peers, ", "))
	} else {
		fmt.Fprintf(w, "  multicast to %v\n", in.McastDstIP)
	}
	for _, v := range in.VIPs {
		fmt.Fprintf(w, "  VIP %s\n", v)
	}
	for _, v := range in.ExcludedVIPs {
		fmt.Fprintf(w, "  VIP %s (not advertised)\n", v)
	}
	for _, r := range in.Routes {
		fmt.Fprintf(w, "  route %s\n", strings.Join(r.Words, " "))
	}
	printTrackers(w, c, in.TrackInterfaces, in.TrackScripts, in.TrackFiles, in.TrackProcesses)
	printNotify(w, in.Notify)
}

func printTrackers(w io.Writer, c *Config, ti []TrackInterface, ts, tf, tp []TrackRef) {
	for _, t := range ti {
		fmt.Fprintf(w, "  track_interface %s%s\n", t.Name, weightText(t.Weight, t.Reverse))
	}
	ref := func(kind string, refs []TrackRef, weight func(TrackRef) int) {
		for _, t := range refs {
			fmt.Fprintf(w, "  %s %s%s\n", kind, t.Name, weightText(weight(t), t.Reverse))
		}
	}
	ref("track_script", ts, c.ScriptWeight)
	ref("track_file", tf, c.FileWeight)
	ref("track_process", tp, c.ProcessWeight)
}

func weightText(w int, reverse bool) string {
	if w == 0 {
		return " (FAULT when down)" + rev(reverse)
	}
	return fmt.Sprintf(" weight %+d%s", w, rev(reverse))
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
	if v.NoTrack {
		b.WriteString(" no_track")
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
