package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// Counters come from two places. The kernel counts what it sees — adverts
// received and dropped, the fence's drops — in its pinned maps (loader.Counters),
// so they survive the daemon and cost the agent nothing until read. What only
// the agent sees — adverts sent, transitions, lease renewals — it counts on its
// event loop, where a plain increment is free and a map write per advert would
// be a syscall on the path that renews the lease; those start from zero with
// each daemon. Status puts both together under keepalived's names.

// agentCounts are an instance's counters that only the agent sees.
type agentCounts struct {
	advertSent, priZeroSent     uint64
	becomeMaster, releaseMaster uint64
	leaseRenewals               uint64
	lastTransition              time.Time
}

// transition counts a change of state.
func (c *agentCounts) transition(from, to vrrp.State) {
	if to == vrrp.Master {
		c.becomeMaster++
	}
	if from == vrrp.Master && to != vrrp.Master {
		c.releaseMaster++
	}
	c.lastTransition = time.Now()
}

// flushed counts an advert of priority prio that left (ok) or did not.
func (c *agentCounts) flushed(ok bool, prio uint8) {
	if !ok {
		return
	}
	c.advertSent++
	if prio == 0 {
		c.priZeroSent++
	}
}

// CounterStatus is an instance's counters, under keepalived's statistics
// names where keepalived counts the same event. docs/status.md says which
// come from the kernel and which from the daemon.
type CounterStatus struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthtype   uint64 `json:"invalid_authtype"`
	AuthtypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
	// Dropped counts the instance's adverts the kernel dropped, by
	// vrrp.Reason name (keepalived's errors above included); only reasons
	// that occurred.
	Dropped       map[string]uint64 `json:"dropped"`
	FencedIngress uint64            `json:"fenced_ingress"`
	FencedEgress  uint64            `json:"fenced_egress"`
	NoAccept      uint64            `json:"no_accept"`
	LeaseRenewals uint64            `json:"lease_renewals"`
	// Foreign counts the well-formed adverts for VRIDs no instance runs that
	// arrived on the instance's interface for its family (other routers'):
	// the interface's count, the same for every instance on it.
	Foreign uint64 `json:"foreign"`
}

func counterStatus(k loader.Counters, c agentCounts, foreign uint64) *CounterStatus {
	cs := &CounterStatus{
		AdvertRcvd: k.AdvertRcvd, AdvertSent: c.advertSent,
		BecomeMaster: c.becomeMaster, ReleaseMaster: c.releaseMaster,
		PacketLenErr: k.PacketLenErr, IPTTLErr: k.IPTTLErr, InvalidTypeRcvd: k.InvalidTypeRcvd,
		AdvertIntervalErr: k.AdvertIntervalErr, AddrListErr: k.AddrListErr,
		InvalidAuthtype: k.InvalidAuthtype, AuthtypeMismatch: k.AuthtypeMismatch, AuthFailure: k.AuthFailure,
		PriZeroRcvd: k.PriZeroRcvd, PriZeroSent: c.priZeroSent,
		Dropped:       map[string]uint64{},
		FencedIngress: k.FencedIngress, FencedEgress: k.FencedEgress, NoAccept: k.NoAccept,
		LeaseRenewals: c.leaseRenewals, Foreign: foreign,
	}
	for r, n := range k.Dropped {
		cs.Dropped[r.String()] = n
	}
	return cs
}

// KernelCounterStatus is what the kernel counted on every interface
// together, adverts for no instance of ours included.
type KernelCounterStatus struct {
	// Adverts by vrrp.Reason name, every reason: "valid" those accepted,
	// "foreign" well-formed adverts for VRIDs no instance runs here (passed
	// on to other routers' sockets), the rest drops.
	Adverts       map[string]uint64 `json:"adverts"`
	FencedIngress uint64            `json:"fenced_ingress"`
	FencedEgress  uint64            `json:"fenced_egress"`
	NoAccept      uint64            `json:"no_accept"`
	VLANTagged    uint64            `json:"vlan_tagged"`
	// Liveness: fast_liveness probes answered, replies taken, and drops by
	// reason (docs/architecture.md, "fast_liveness").
	Liveness map[string]uint64 `json:"liveness"`
}

// counterReader is the part of the datapath counters are read from.
type counterReader interface {
	InstanceCounters(loader.Key) (loader.Counters, error)
	ForeignAdverts(ifindex int, ipv6 bool) (uint64, error)
	TotalCounters() (loader.KernelCounters, error)
}

func kernelCounterStatus(dp counterReader) *KernelCounterStatus {
	t, err := dp.TotalCounters()
	if err != nil {
		return nil
	}
	ks := &KernelCounterStatus{Adverts: map[string]uint64{}, FencedIngress: t.FencedIngress,
		FencedEgress: t.FencedEgress, NoAccept: t.NoAccept, VLANTagged: t.VLANTagged,
		Liveness: t.Liveness}
	for r, n := range t.Adverts {
		ks.Adverts[vrrp.Reason(r).String()] = n
	}
	return ks
}

// counters adds the counters to a status taken on the event loop: the
// kernel's, when the datapath can be read (the unit tests' fake cannot).
func (a *Agent) counters(st *Status) {
	dp, ok := a.dp.(counterReader)
	if ok {
		st.Kernel = kernelCounterStatus(dp)
	}
	for i, in := range a.insts {
		var k loader.Counters
		var foreign uint64
		if ok {
			if kc, err := dp.InstanceCounters(in.key); err == nil {
				k = kc
			}
			foreign, _ = dp.ForeignAdverts(in.key.Ifindex, in.key.IPv6)
		}
		is := &st.Instances[i]
		is.Counters = counterStatus(k, in.counts, foreign)
		if !in.counts.lastTransition.IsZero() {
			t := in.counts.lastTransition
			is.LastTransition = &t
		}
	}
}

// kernelOnlyCounters is what the kernel counted for an instance, with no
// daemon to add its own.
func kernelOnlyCounters(dp counterReader, k loader.Key) *CounterStatus {
	kc, err := dp.InstanceCounters(k)
	if err != nil {
		return nil
	}
	foreign, _ := dp.ForeignAdverts(k.Ifindex, k.IPv6)
	return counterStatus(kc, agentCounts{}, foreign)
}

// Status asks the event loop for the daemon's Status, as the status socket
// does: for a reader in another goroutine, such as a metrics collector. It
// returns ctx's error if the loop does not answer before ctx ends.
func (a *Agent) Status(ctx context.Context) (Status, error) {
	reply := make(chan Status, 1)
	select {
	case a.statusReq <- reply:
	case <-ctx.Done():
		return Status{}, fmt.Errorf("ask for status: %w", ctx.Err())
	}
	select {
	case st := <-reply:
		return st, nil
	case <-ctx.Done():
		return Status{}, fmt.Errorf("wait for status: %w", ctx.Err())
	}
}
