package agent

import "fmt"

// Why an instance must be in FAULT: its interface, its adverts, its trackers,
// or its sync group.

// faultOf says why the instance must be in FAULT, or "" if it need not: its own
// interface is down (unless dont_track_primary), or a tracker says so.
func (a *Agent) faultOf(in *instance) string {
	switch {
	case in.gone:
		return "interface " + in.cfg.Interface + " deleted"
	case !in.up && !in.cfg.DontTrackPrimary:
		return "interface " + in.ifi.Name + " down"
	case in.sendFault != "":
		return in.sendFault
	case in.srcGone:
		return fmt.Sprintf("source address %v removed (track_src_ip)", in.sender.src)
	case in.cfg.UnicastFaultNoPeer && len(in.cfg.UnicastPeers) == 0:
		// keepalived: FAULT rather than falling back to multicast.
		return "unicast_fault_no_peer and no unicast peer"
	}
	f, _ := a.verdict(in)
	return f
}

// groupFault is faultOf the instance or, in a sync group, of the first member
// with a fault.
func (a *Agent) groupFault(in *instance) string {
	if f := a.faultOf(in); f != "" || in.cfg.SyncGroup == "" {
		return f
	}
	for _, p := range a.pending {
		if p.SyncGroup == in.cfg.SyncGroup {
			return fmt.Sprintf("sync group %s: (%s) interface %s missing", in.cfg.SyncGroup, p.Name, p.Interface)
		}
	}
	for _, m := range a.groups[in.cfg.SyncGroup] {
		if f := a.faultOf(m); f != "" {
			return fmt.Sprintf("sync group %s: (%s) %s", in.cfg.SyncGroup, m.cfg.Name, f)
		}
	}
	return ""
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
