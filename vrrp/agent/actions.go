package agent

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// What the machine's actions do on the host and in the kernel: transitions
// (lease first, then VIPs; fence first, then VIPs away), adverts and their
// flush, gratuitous ARPs, and how transitions are reported.

// apply carries out a machine's actions in order, then moves the instance's
// sync group along with it.
func (a *Agent) apply(in *instance, acts []vrrp.Action) {
	now := a.now()
	var moved *vrrp.Action
	for i := range acts {
		act := acts[i]
		switch act.Kind {
		case vrrp.ActTransition:
			a.transition(in, act, now)
			moved = &acts[i]
		case vrrp.ActAdvert:
			a.advert(in, act.Priority)
		}
	}
	if moved != nil && moved.To == vrrp.Master {
		// The advert leaves, then the lease opens the fence.
		a.flush()
		in.garpLeft = max(1, in.cfg.Garp.MasterRepeat)
		in.garpBurst = 0
		a.garpDue(in, now)
	}
	// Logged once the work is done: a log line would cost a takeover tens of
	// microseconds before its first gratuitous ARP.
	for _, act := range acts {
		if act.Kind == vrrp.ActTransition {
			a.reportTransition(in, act)
		}
	}
	if moved != nil {
		a.follow(in, moved.To, now)
	}
}

// stateName is a state as notify scripts and FIFOs name it: Init is STOP.
func stateName(s vrrp.State) string {
	if s == vrrp.Init {
		return "STOP"
	}
	return s.String()
}

func (a *Agent) transition(in *instance, act vrrp.Action, now time.Duration) {
	in.counts.transition(act.From, act.To)
	switch act.To {
	case vrrp.Master:
		// The VIPs now, the lease once our first advert has left (flush,
		// which apply calls next): until then the fence keeps the VIPs'
		// traffic from us, and the old master, which lets go in its kernel
		// when that advert reaches it, answers alone. The fence lets our
		// gratuitous ARPs through only for a MASTER with a lease: they
		// follow the flush.
		in.handoverUntil = 0
		for _, v := range in.held() {
			if err := a.addrs.add(v); err != nil {
				a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			}
		}
		a.becameMaster(in, now)
	default:
		// Leaving MASTER other than for FAULT, while the kernel still holds
		// our lease: make before break (handover.go).
		if act.From == vrrp.Master && act.To != vrrp.Fault && a.handOver(in, now) {
			in.garpAt = 0
			return
		}
		// A fault ends a hand-over under way: this node may no longer serve.
		handing := in.handoverUntil != 0 && act.To == vrrp.Fault
		if handing {
			in.handoverUntil = 0
		}
		// Fence first, then remove the addresses.
		a.putKernel(in, act.To, now)
		if act.From == vrrp.Master || handing {
			a.delRoutes(in)
			for _, v := range in.held() {
				if err := a.addrs.del(v); err != nil {
					a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
				}
			}
		}
		in.garpAt = 0
	}
}

// reportTransition logs a transition as keepalived does and queues its notify
// scripts.
func (a *Agent) reportTransition(in *instance, act vrrp.Action) {
	msg := fmt.Sprintf("(%s) Entering %s STATE", in.cfg.Name, act.To)
	if act.To == vrrp.Init {
		msg = fmt.Sprintf("(%s) Stopped", in.cfg.Name)
	}
	if act.From == vrrp.Init && act.To == vrrp.Backup {
		msg += " (init)"
	}
	if act.Silent > 0 {
		a.log.Info(msg, "from", act.From.String(), "why", act.Why, "silent", act.Silent)
	} else {
		a.log.Info(msg, "from", act.From.String(), "why", act.Why)
	}
	a.notify.instance(in.cfg, stateName(act.To), in.m.Priority())
}

// leaseFor is how long a master's lease lasts past each advert (vrrp.Lease).
func leaseFor(in *instance) time.Duration {
	return vrrp.Lease(in.cfg.Version, in.cfg.Interval, in.cfg.DownTimerAdverts)
}

func (a *Agent) putKernel(in *instance, state vrrp.State, now time.Duration) {
	k := in.nextKernelState(state, now)
	if err := a.dp.SetInstance(in.key, in.spec, k); err != nil {
		a.log.Error(fmt.Sprintf("(%s) update kernel instance: %v", in.cfg.Name, err))
	}
	in.kernelWrote(k, a.now())
}

// renewLeases renews the leases of masters whose adverts left, from when each
// was queued, in one write: all instances due together renew together.
func (a *Agent) renewLeases(ins []*instance) {
	if len(ins) == 0 {
		return
	}
	ks, ss, sts := make([]loader.Key, len(ins)), make([]loader.Spec, len(ins)), make([]loader.InstanceState, len(ins))
	for i, in := range ins {
		ks[i], ss[i], sts[i] = in.key, in.spec, in.nextKernelState(vrrp.Master, in.queuedAt)
		in.counts.leaseRenewals++
	}
	if err := a.dp.SetInstances(ks, ss, sts); err != nil {
		a.log.Error(fmt.Sprintf("renew leases: %v", err))
	}
	now := a.now()
	for i, in := range ins {
		in.kernelWrote(sts[i], now)
	}
}

// nextKernelState is what the kernel is to hold of an instance in state at
// now (a master's lease runs from now), recorded as in.kstate.
func (in *instance) nextKernelState(state vrrp.State, now time.Duration) loader.InstanceState {
	in.kstate = loader.InstanceState{State: state, Priority: in.m.Priority(), Renewed: in.kstate.Renewed}
	k := in.kstate
	switch {
	case state == vrrp.Master:
		// Renewed tells the kernel our daemon is alive (let_go); a master
		// again ends any hand-over.
		in.handoverUntil = 0
		in.kstate.LeaseUntil, in.kstate.Renewed = now+leaseFor(in), now
		k = in.kstate
	case in.handoverUntil != 0:
		// Still the lease it had, in the kernel, until the successor's
		// advert ends it there.
		k = handingOver(in)
	}
	return k
}

func (a *Agent) advert(in *instance, prio uint8) {
	in.advert.Priority = prio
	if err := in.sender.queue(&in.advert); err != nil {
		a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		return
	}
	if !in.flushing {
		in.flushing = true
		a.queued = append(a.queued, in)
	}
	// Every advert that leaves renews the lease; flush renews it once sent,
	// from a time before the send: a backup's Master_Down_Interval runs from
	// when the advert reached it. The time is read now, not taken from the
	// start of the transition: adding the VIPs before it goes through
	// netlink, which waits for the RTNL lock every namespace shares, and a
	// takeover that waited 250 ms for it wrote a lease already over, so the
	// fence dropped the gratuitous ARPs that followed and clients kept the
	// old master's MAC until the next burst, 5 s later.
	in.renew = prio != 0 && in.m.State() == vrrp.Master
	in.queuedAt = a.now()
}

// garpDue sends what is due of the gratuitous ARP schedule: a burst of
// garp_master_repeat on becoming master, another after garp_master_delay, then
// garp_master_refresh_repeat every garp_master_refresh.
func (a *Agent) garpDue(in *instance, now time.Duration) {
	in.garpAt = 0
	if in.m.State() != vrrp.Master {
		return
	}
	g := in.cfg.Garp
	if sp := a.garpSpacing(in); sp > 0 && in.garpLeft > 1 {
		// vrrp_garp_interval: the burst goes a round at a time.
		a.announceRound(in)
		in.garpLeft--
		in.garpAt = now + sp
		return
	}
	for range in.garpLeft {
		a.announceRound(in)
	}
	in.garpBurst++
	switch {
	case in.garpBurst == 1 && g.MasterDelay > 0 && !a.cfg.Global.MinGarp:
		in.garpAt, in.garpLeft = now+g.MasterDelay, max(1, g.MasterRepeat)
	case g.MasterRefresh > 0 && !a.cfg.Global.MinGarp:
		in.garpAt, in.garpLeft = now+g.MasterRefresh, max(1, g.MasterRefreshRepeat)
	}
}

// lowerPrioGarp answers another master of lower priority as keepalived does:
// besides the advert that makes it step down, a burst of garp_lower_prio_repeat
// gratuitous ARPs, because the hosts it took over may still send to its MAC — a
// master that was frozen and woke never changed state, so nothing else would
// tell them. At most one burst per advert interval, so that a flood of such
// adverts is not a flood of ARP.
func (a *Agent) lowerPrioGarp(in *instance, e loader.Heard, now time.Duration) {
	g := in.cfg.Garp
	if g.LowerPrioRepeat <= 0 || now < in.lowerGarpNext {
		return
	}
	in.lowerGarpNext = now + in.cfg.Interval
	// The advert first, and the lease it renews: a master that was frozen
	// woke with its lease run out (or ended by the kernel), and the fence
	// would drop ARPs sent before — the client would stay with the other
	// node, which our advert is about to fence, until its ARP entry went
	// stale, seconds later.
	a.flush()
	in.lowerLeft, in.lowerSecond = g.LowerPrioRepeat, g.LowerPrioDelay > 0
	a.lowerRounds(in, now)
	a.log.Info(fmt.Sprintf("(%s) Received advert from %v with lower priority %d, ours %d, forcing new election",
		in.cfg.Name, e.Addr, e.Priority, in.m.Priority()))
}

// socket returns the raw socket for adverts from src on ifi, opening it once.
func (a *Agent) socket(ifi *net.Interface, src netip.Addr) (*rawSocket, error) {
	k := keyOf(ifi, src)
	if s := a.socks[k]; s != nil {
		return s, nil
	}
	s, err := openRawSocket(ifi, src)
	if err != nil {
		return nil, err
	}
	a.socks[k] = s
	return s, nil
}

// flush sends the adverts queued since the last flush, a batch per socket,
// then renews the leases of the masters whose adverts left and takes note of
// those that could not send.
func (a *Agent) flush() {
	for _, s := range a.socks {
		if s.n > 0 {
			s.flush()
		}
	}
	queued := a.queued
	a.queued = nil
	now := a.now()
	var renew []*instance
	for _, in := range queued {
		in.flushing = false
		_, ok, failures := in.sender.outcome()
		a.sendOutcome(in, ok, failures, now)
		in.counts.flushed(ok, in.advert.Priority)
		if ok && in.renew && in.m.State() == vrrp.Master {
			renew = append(renew, in)
		}
		in.renew = false
	}
	a.renewLeases(renew)
}
