// Package metrics serves a daemon's Status as Prometheus metrics. Each scrape
// asks the event loop for a Status, as `xvrrp status` does, and turns it into
// metrics: nothing on the packet or advert path changes for them.
//
// Where the keepalived exporters most dashboards are built on
// (mehdy/keepalived-exporter, with the labels iname, intf and vrid) have a
// metric, it has their name and labels, so that dashboards carry over; the
// rest are xvrrp_*.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

// StatusFunc returns the daemon's status; (*agent.Agent).Status is one.
type StatusFunc func(context.Context) (agent.Status, error)

// scrapeTimeout bounds how long a scrape waits for the event loop, which
// answers between two of its turns: far less unless the loop is stuck, and
// then keepalived_up says 0.
const scrapeTimeout = 2 * time.Second

var instanceLabels = []string{"iname", "intf", "vrid"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func instanceDesc(name, help string, more ...string) *prometheus.Desc {
	return desc(name, help, append(append([]string{}, instanceLabels...), more...)...)
}

// counter is one of an instance's counters, under the keepalived exporter's
// name where it has one.
type counter struct {
	desc  *prometheus.Desc
	value func(*agent.CounterStatus) uint64
}

var counters = []counter{
	{instanceDesc("keepalived_advertisements_received_total", "Adverts the kernel accepted for the instance (keepalived's advert_rcvd)."),
		func(c *agent.CounterStatus) uint64 { return c.AdvertRcvd }},
	{instanceDesc("keepalived_advertisements_sent_total", "Adverts sent (advert_sent)."),
		func(c *agent.CounterStatus) uint64 { return c.AdvertSent }},
	{instanceDesc("keepalived_become_master_total", "Transitions to MASTER (become_master)."),
		func(c *agent.CounterStatus) uint64 { return c.BecomeMaster }},
	{instanceDesc("keepalived_release_master_total", "Transitions out of MASTER (release_master)."),
		func(c *agent.CounterStatus) uint64 { return c.ReleaseMaster }},
	{instanceDesc("keepalived_packet_length_errors_total", "Adverts dropped for their length (packet_len_err)."),
		func(c *agent.CounterStatus) uint64 { return c.PacketLenErr }},
	{instanceDesc("keepalived_ip_ttl_errors_total", "Adverts dropped for a TTL or hop limit other than 255 (ip_ttl_err)."),
		func(c *agent.CounterStatus) uint64 { return c.IPTTLErr }},
	{instanceDesc("keepalived_invalid_type_received_total", "Adverts dropped for their type (invalid_type_rcvd)."),
		func(c *agent.CounterStatus) uint64 { return c.InvalidTypeRcvd }},
	{instanceDesc("keepalived_advertisements_interval_errors_total", "Adverts dropped for their interval (advert_interval_err)."),
		func(c *agent.CounterStatus) uint64 { return c.AdvertIntervalErr }},
	{instanceDesc("keepalived_address_list_errors_total", "Adverts dropped for their address count (addr_list_err)."),
		func(c *agent.CounterStatus) uint64 { return c.AddrListErr }},
	{instanceDesc("keepalived_authentication_invalid_total", "VRRPv2 adverts dropped for an unknown authentication type (invalid_authtype)."),
		func(c *agent.CounterStatus) uint64 { return c.InvalidAuthtype }},
	{instanceDesc("keepalived_authentication_mismatch_total", "VRRPv2 adverts dropped for another authentication type than ours (authtype_mismatch)."),
		func(c *agent.CounterStatus) uint64 { return c.AuthtypeMismatch }},
	{instanceDesc("keepalived_authentication_failure_total", "VRRPv2 adverts dropped for a wrong password (auth_failure)."),
		func(c *agent.CounterStatus) uint64 { return c.AuthFailure }},
	{instanceDesc("keepalived_priority_zero_received_total", "Adverts of priority 0 received (pri_zero_rcvd)."),
		func(c *agent.CounterStatus) uint64 { return c.PriZeroRcvd }},
	{instanceDesc("keepalived_priority_zero_sent_total", "Adverts of priority 0 sent (pri_zero_sent)."),
		func(c *agent.CounterStatus) uint64 { return c.PriZeroSent }},
	{instanceDesc("xvrrp_no_accept_dropped_total", "Packets to the VIPs of a master in no_accept mode, dropped by the fence."),
		func(c *agent.CounterStatus) uint64 { return c.NoAccept }},
	{instanceDesc("xvrrp_lease_renewals_total", "Leases renewed by an advert that left."),
		func(c *agent.CounterStatus) uint64 { return c.LeaseRenewals }},
}

var (
	upDesc           = desc("keepalived_up", "Whether the daemon answered with its status (1) or not (0).")
	vipStateDesc     = desc("keepalived_vrrp_state", "State of the instance owning the VIP: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.", "iname", "intf", "vrid", "ip_address")
	scriptDesc       = desc("keepalived_script_status", "Whether a vrrp_script succeeds: 1 GOOD, 0 BAD.", "name")
	stateDesc        = instanceDesc("xvrrp_instance_state", "State of the instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.")
	basePrioDesc     = instanceDesc("xvrrp_base_priority", "Configured priority.")
	effPrioDesc      = instanceDesc("xvrrp_effective_priority", "Priority after the trackers.")
	leaseDesc        = instanceDesc("xvrrp_lease_left_seconds", "How long the fence still lets the VIPs through without another advert; 0 when not master.")
	transitionDesc   = instanceDesc("xvrrp_last_transition_timestamp_seconds", "When the instance last changed state, in seconds since the epoch.")
	sendErrDesc      = instanceDesc("xvrrp_send_errors_total", "Adverts the kernel refused to send.")
	droppedDesc      = instanceDesc("xvrrp_adverts_dropped_total", "Adverts for the instance the kernel dropped, by reason.", "reason")
	fencedDesc       = instanceDesc("xvrrp_fenced_packets_total", "Packets to (ingress) or from (egress) the instance's VIPs the fence dropped: not MASTER with a lease.", "direction")
	vipFencedDesc    = desc("xvrrp_vip_fenced", "Whether the fence drops the VIP's traffic on this node (1) or lets it through (0).", "iname", "intf", "vrid", "ip_address")
	vipPresentDesc   = desc("xvrrp_vip_present", "Whether the VIP is configured on its interface.", "iname", "intf", "vrid", "ip_address")
	trackerDesc      = desc("xvrrp_tracker_healthy", "Whether a tracker the instance follows is healthy.", "iname", "kind", "name")
	kernelAdvDesc    = desc("xvrrp_kernel_adverts_total", "Adverts the kernel judged on every interface, by reason: valid, foreign (a VRID not run here, passed on) or a drop.", "reason")
	kernelFencedDesc = desc("xvrrp_kernel_fenced_packets_total", "Packets the fence dropped for every VIP, by direction.", "direction")
	foreignDesc      = desc("xvrrp_foreign_adverts_total", "Well-formed adverts for VRIDs no instance runs (other routers'), passed on, by interface and family.", "intf", "family")
)

// Collector is a prometheus.Collector of a daemon's Status.
type Collector struct {
	status StatusFunc
}

// New returns a Collector that asks status at each scrape.
func New(status StatusFunc) *Collector { return &Collector{status: status} }

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, vipStateDesc, scriptDesc, stateDesc, basePrioDesc, effPrioDesc,
		leaseDesc, transitionDesc, sendErrDesc, droppedDesc, fencedDesc, vipFencedDesc, vipPresentDesc,
		trackerDesc, kernelAdvDesc, kernelFencedDesc, foreignDesc} {
		ch <- d
	}
	for _, m := range counters {
		ch <- m.desc
	}
}

// Collect takes the status and sends the metrics it gives.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.status(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	count := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	scripts := map[string]bool{}
	type link struct{ intf, family string }
	foreign := map[link]bool{}
	for _, in := range st.Instances {
		l := []string{in.Name, in.Interface, strconv.Itoa(int(in.VRID))}
		state := float64(stateNumber(in.State))
		gauge(stateDesc, state, l...)
		gauge(basePrioDesc, float64(in.BasePriority), l...)
		gauge(effPrioDesc, float64(in.EffectivePriority), l...)
		gauge(leaseDesc, in.LeaseLeft.Seconds(), l...)
		if in.LastTransition != nil {
			gauge(transitionDesc, float64(in.LastTransition.UnixNano())/1e9, l...)
		}
		count(sendErrDesc, in.SendErrors, l...)
		for _, v := range in.VIPs {
			addr, _, _ := strings.Cut(v.Address, "/")
			vl := []string{in.Name, v.Dev, l[2], addr}
			gauge(vipStateDesc, state, vl...)
			gauge(vipFencedDesc, boolean(v.Fenced), vl...)
			gauge(vipPresentDesc, boolean(v.Present), vl...)
		}
		for _, t := range in.Trackers {
			gauge(trackerDesc, boolean(t.Healthy), in.Name, t.Kind, t.Name)
			if t.Kind == "script" && !scripts[t.Name] {
				scripts[t.Name] = true
				gauge(scriptDesc, boolean(t.Healthy), t.Name)
			}
		}
		cs := in.Counters
		if cs == nil {
			continue
		}
		for _, m := range counters {
			count(m.desc, m.value(cs), l...)
		}
		for reason, n := range cs.Dropped {
			count(droppedDesc, n, append(l, reason)...)
		}
		count(fencedDesc, cs.FencedIngress, append(l, "ingress")...)
		count(fencedDesc, cs.FencedEgress, append(l, "egress")...)
		// The interface's, once however many instances run on it.
		if k := (link{in.Interface, in.Family}); !foreign[k] {
			foreign[k] = true
			count(foreignDesc, cs.Foreign, k.intf, k.family)
		}
	}
	if k := st.Kernel; k != nil {
		for reason, n := range k.Adverts {
			count(kernelAdvDesc, n, reason)
		}
		count(kernelFencedDesc, k.FencedIngress, "ingress")
		count(kernelFencedDesc, k.FencedEgress, "egress")
	}
}

// stateNumber is keepalived's number for a state, which its exporters give.
func stateNumber(s string) int {
	switch s {
	case "BACKUP":
		return 1
	case "MASTER":
		return 2
	case "FAULT":
		return 3
	}
	return 0
}

func boolean(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the collector's metrics, with the Go runtime's and the
// process's, in the exposition format.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
