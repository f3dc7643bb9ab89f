// Package bench measures failover: it builds a namespace lab, runs xvrrp (and
// keepalived, when installed) on the same configuration, breaks the master in
// each failure mode, and measures from packet captures and 1 ms client probes.
package bench

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/vrrp"
)

// Metric names, in report order.
const (
	MetricDetect = "detect" // last advert that held the backup back → first advert of the new master
	MetricGARP   = "garp"   // Master_Down expiry → first gratuitous ARP of the new master
	MetricAnswer = "answer" // first gratuitous ARP → first probe answered by the new master
	MetricOutage = "outage" // longest run of unanswered probes, answered probe to answered probe
	MetricDual   = "dual"   // time two MACs answered probes for the VIP
)

// Metrics is every metric, in report order.
var Metrics = []string{MetricDetect, MetricGARP, MetricAnswer, MetricOutage, MetricDual}

// Trial is what one failure (or failback) looked like on the wire and to the
// client, between Start (the moment of the fault) and End.
type Trial struct {
	Start, End time.Time
	Old, New   string // host names: the master that was broken, the one expected to take over
	// From the capture on the client: adverts and ARP.
	Adverts []Advert
	ARPs    []GARP
	// From the client's probes: the normal ones through the client's ARP cache,
	// and the directed ones, sent to each node's MAC.
	Probes   []lab.Answer
	Directed []lab.DirectedRound
	Tick     time.Duration // probe interval
	// The new master's Master_Down_Interval.
	MasterDown time.Duration
}

// Advert is a VRRP advert seen on the wire.
type Advert struct {
	At       time.Time
	Host     string
	Priority uint8
}

// GARP is a gratuitous ARP for the VIP seen on the wire.
type GARP struct {
	At   time.Time
	Host string // the sender, or AnyNew
}

// AnyNew is the sender of a gratuitous ARP that names no host, as with a
// VMAC, where every node announces the VIP with the same MAC: it counts as the
// new master's, the node that announces after a failure.
const AnyNew = "(any new master)"

// Measure computes the trial's metrics; a metric that cannot be measured (no
// new master advert, no ARP) is absent.
func (t *Trial) Measure() map[string]time.Duration {
	m := map[string]time.Duration{}
	var first *Advert
	for i, a := range t.Adverts {
		if a.At.Before(t.Start) || a.At.After(t.End) {
			continue
		}
		if a.Host == t.New && a.Priority > 0 {
			first = &t.Adverts[i]
			break
		}
	}
	if first != nil {
		// The reference: the old master's last advert before the new master's
		// first that outranked the new master (a lower one, or priority 0, no
		// longer holds it back). If none (a failback: the new master was the
		// lower one), the fault itself.
		ref := t.Start
		newPrio := first.Priority
		for _, a := range t.Adverts {
			if a.Host == t.Old && a.At.Before(first.At) && a.Priority > newPrio {
				ref = a.At
			}
		}
		m[MetricDetect] = first.At.Sub(ref)
		for _, g := range t.ARPs {
			if (g.Host == t.New || g.Host == AnyNew) && !g.At.Before(t.Start) && !g.At.After(t.End) {
				m[MetricGARP] = g.At.Sub(ref.Add(t.MasterDown))
				for _, p := range t.Probes {
					if p.From == t.New && !p.Sent.Before(g.At) {
						m[MetricAnswer] = p.Sent.Sub(g.At)
						break
					}
				}
				break
			}
		}
	}
	m[MetricOutage] = outage(t.Probes, t.Start, t.End)
	var dual time.Duration
	for _, d := range t.Directed {
		if !d.Sent.Before(t.Start) && !d.Sent.After(t.End) && len(d.From) > 1 {
			dual += t.Tick
		}
	}
	m[MetricDual] = dual
	return m
}

// outage is the longest time the client went unanswered among probes sent in
// [from, to]: from the last answered probe before one or more unanswered ones
// (which may precede from) to the first answered after them; 0 when every probe
// was answered; the whole window if none was. A gap between two answered
// probes with none sent in between is the prober's own stall — a shared
// machine can keep it off the CPU for tens of milliseconds — not the VIP's, and
// does not count.
func outage(probes []lab.Answer, from, to time.Time) time.Duration {
	last := from
	for _, p := range probes {
		if p.From != "" && !p.Sent.After(from) {
			last = p.Sent
		}
	}
	var longest time.Duration
	answered, lost := false, false
	for _, p := range probes {
		if !p.Sent.After(from) || p.Sent.After(to) {
			continue
		}
		if p.From == "" {
			lost = true
			continue
		}
		if lost {
			longest = max(longest, p.Sent.Sub(last))
		}
		last, answered, lost = p.Sent, true, false
	}
	if !answered {
		return to.Sub(from)
	}
	return longest
}

// Percentile returns the p-th percentile (0–100) of ds by nearest rank.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// DecodeFrames turns captured Ethernet frames into adverts and gratuitous ARPs
// for the VIP, naming hosts by their addresses (IPv4 for adverts, MAC for ARP).
func DecodeFrames(frames []lab.Frame, vip netip.Addr, byIP map[netip.Addr]string, byMAC map[string]string) (adverts []Advert, garps []GARP) {
	for _, f := range frames {
		d := f.Data
		if len(d) < 14 {
			continue
		}
		switch binary.BigEndian.Uint16(d[12:14]) {
		case 0x0800:
			ip := d[14:]
			if len(ip) < 20 || ip[9] != vrrp.Protocol {
				continue
			}
			ihl := int(ip[0]&0x0f) * 4
			if len(ip) < ihl+8 {
				continue
			}
			src := netip.AddrFrom4([4]byte(ip[12:16]))
			host, ok := byIP[src]
			if !ok {
				continue
			}
			adverts = append(adverts, Advert{At: f.Time, Host: host, Priority: ip[ihl+2]})
		case 0x0806:
			arp := d[14:]
			if len(arp) < 28 || binary.BigEndian.Uint16(arp[0:2]) != 1 || binary.BigEndian.Uint16(arp[2:4]) != 0x0800 {
				continue
			}
			spa := netip.AddrFrom4([4]byte(arp[14:18]))
			tpa := netip.AddrFrom4([4]byte(arp[24:28]))
			op := binary.BigEndian.Uint16(arp[6:8])
			// Gratuitous: the sender announces the VIP as its own, as a request
			// for itself or an unsolicited reply.
			if spa != vip || (op == 1 && tpa != vip) {
				continue
			}
			if host, ok := byMAC[net.HardwareAddr(arp[8:14]).String()]; ok {
				garps = append(garps, GARP{At: f.Time, Host: host})
			}
		}
	}
	return adverts, garps
}
