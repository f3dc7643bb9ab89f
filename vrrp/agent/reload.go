package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

// ErrNotRunning is returned by Reload when the agent's event loop is not
// running.
var ErrNotRunning = errors.New("agent is not running")

type reloadReq struct {
	cfg  *config.Config
	done chan error
}

// Reload applies a new configuration with keepalived's semantics, on the event
// loop: instances are matched by name, interface, VRID and family; a matched
// instance keeps its state — no transition, no gap in its adverts — and takes
// its new priority, trackers, notify scripts, preemption, accept mode and VIP
// list in place (VIPs diffed; a master adds and announces new ones and removes
// dropped ones); an instance whose adverts would change on the wire in a way a
// peer would see as another router (version, interval, authentication, peers,
// source, group, down_timer_adverts) is stopped and started again; new
// instances start; removed ones resign with priority 0 and remove their VIPs.
// The datapath stays attached throughout. The caller validates cfg first: an
// invalid configuration never reaches Reload.
func (a *Agent) Reload(cfg *config.Config) error {
	r := reloadReq{cfg: cfg, done: make(chan error, 1)}
	select {
	case a.reloadReq <- r:
	case <-a.loopDone:
		return ErrNotRunning
	}
	select {
	case err := <-r.done:
		return err
	case <-a.loopDone:
		return ErrNotRunning
	}
}

// instanceID is how keepalived matches an instance across a reload.
type instanceID struct {
	name, iface string
	vrid        uint8
	family      config.Family
}

func idOf(in *config.Instance) instanceID {
	return instanceID{in.Name, in.Interface, in.VRID, in.Family}
}

// reload runs on the event loop.
func (a *Agent) reload(cfg *config.Config) error {
	if a.opt.Notify != nil {
		a.opt.Notify("RELOADING=1")
		defer a.opt.Notify("READY=1")
	}
	now := a.now()
	old := map[instanceID]*instance{}
	for _, in := range a.insts {
		old[idOf(in.cfg)] = in
	}
	var (
		keep    []*instance
		added   []*config.Instance
		errs    []error
		changed int
	)
	for _, nc := range cfg.Instances {
		in := old[idOf(nc)]
		switch {
		case in == nil:
			added = append(added, nc)
		case onTheWire(in.cfg, nc):
			a.log.Info(fmt.Sprintf("(%s) changed on the wire: stopping and starting it again", nc.Name))
			a.remove(in, now)
			delete(old, idOf(nc))
			added = append(added, nc)
		default:
			if a.update(in, nc, now) {
				changed++
			}
			keep = append(keep, in)
			delete(old, idOf(nc))
		}
	}
	for _, in := range old {
		a.log.Info(fmt.Sprintf("(%s) removed from the configuration: resigning", in.cfg.Name))
		a.remove(in, now)
	}
	a.flush()

	// The new configuration's trackers and notify scripts. Trackers of the
	// same name keep their last state until they report again, so a reload
	// moves no priority by itself.
	prevHealth := a.health
	if a.stopTrackers != nil {
		a.stopTrackers()
	}
	if a.notify != nil {
		a.notify.close()
	}
	a.cfg, a.policy = cfg, nil
	a.insts = keep
	a.byKey = map[loader.Key]*instance{}
	a.groups = map[string][]*instance{}
	for _, in := range keep {
		a.index(in)
	}
	a.pending, a.pendingAt = nil, 0
	for _, nc := range added {
		if a.waitForInterface(nc) {
			continue
		}
		in, err := a.newInstance(nc)
		if err == nil {
			err = a.dp.Attach(in.ifi.Index)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("(%s) %w", nc.Name, err))
			continue
		}
		for _, v := range in.vips {
			a.addrs.prepare(v)
		}
		a.insts = append(a.insts, in)
		a.index(in)
	}
	if err := a.startTrackers(); err != nil {
		errs = append(errs, err)
	}
	a.health.carry(prevHealth)
	notify, err := newNotifier(cfg, a.log)
	if err != nil {
		errs = append(errs, err)
		notify = &notifier{log: a.log, jobs: make(chan func(), 1), done: make(chan struct{})}
		close(notify.done)
	}
	a.notify = notify
	for _, in := range a.insts {
		if in.m.State() == vrrp.Init {
			if f := a.groupFault(in); f != "" {
				a.apply(in, in.m.SetFault(now, true, f))
			} else {
				a.apply(in, in.m.Start(now))
			}
		}
	}
	a.reassess("")
	a.log.Info("configuration reloaded", "instances", len(a.insts), "kept", len(keep), "changed_in_place", changed,
		"started", len(added), "errors", len(errs))
	return errors.Join(errs...)
}

// index adds an instance to the lookups by kernel key and sync group.
func (a *Agent) index(in *instance) {
	a.byKey[in.key] = in
	if in.cfg.SyncGroup != "" {
		a.groups[in.cfg.SyncGroup] = append(a.groups[in.cfg.SyncGroup], in)
	}
}

// onTheWire reports whether a peer would see the new instance as another
// router, or the kernel must check its adverts against other rules — or what
// changed is not applied in place yet.
func onTheWire(o, n *config.Instance) bool {
	return o.Version != n.Version || o.Interval != n.Interval || o.AuthType != n.AuthType || o.AuthPass != n.AuthPass ||
		!slices.Equal(o.UnicastPeers, n.UnicastPeers) || o.ChecksumAsV2 != n.ChecksumAsV2 ||
		o.UnicastSrcIP != n.UnicastSrcIP || o.McastSrcIP != n.McastSrcIP || o.McastDstIP != n.McastDstIP ||
		o.DownTimerAdverts != n.DownTimerAdverts ||
		o.UseVMAC != n.UseVMAC || o.VMACName != n.VMACName || o.VMACAddr != n.VMACAddr || o.VMACXmitBase != n.VMACXmitBase ||
		!slices.Equal(o.AddrVMACs, n.AddrVMACs) ||
		(o.Liveness == nil) != (n.Liveness == nil) || (o.Liveness != nil && (o.Liveness.Interval != n.Liveness.Interval || o.Liveness.Multiplier != n.Liveness.Multiplier)) ||
		// Not applied in place yet: excluded addresses, routes and rules.
		!slices.EqualFunc(o.ExcludedVIPs, n.ExcludedVIPs, func(x, y config.VIP) bool { return x.Prefix == y.Prefix && x.Dev == y.Dev }) ||
		!slices.EqualFunc(o.Routes, n.Routes, func(x, y config.Route) bool { return slices.Equal(x.Words, y.Words) }) ||
		!slices.EqualFunc(o.Rules, n.Rules, func(x, y config.Rule) bool { return slices.Equal(x.Words, y.Words) })
}

// update takes a matched instance's new settings in place, and reports
// whether any changed.
func (a *Agent) update(in *instance, nc *config.Instance, now time.Duration) bool {
	oc := in.cfg
	in.cfg = nc
	changed := oc.Priority != nc.Priority || oc.Preempt != nc.Preempt || oc.PreemptDelay != nc.PreemptDelay || oc.Accept != nc.Accept
	in.m.SetPreempt(!nc.Preempt, nc.PreemptDelay)
	if oc.Preempt != nc.Preempt || oc.PreemptDelay != nc.PreemptDelay {
		a.putDownTimer(in, now)
	}
	if oc.Accept != nc.Accept {
		in.spec.NoAccept = !nc.Accept
		a.putKernel(in, in.kstate.State, now)
	}
	// The VIPs, diffed by address.
	lnk, err := a.nl.LinkByIndex(in.ifi.Index)
	if err != nil {
		a.log.Warn(fmt.Sprintf("(%s) reload: %v", nc.Name, err))
		return changed
	}
	before := map[netip.Addr]vip{}
	for _, v := range in.vips {
		before[v.ip()] = v
	}
	var vips []vip
	for _, cv := range nc.VIPs {
		v, err := a.vipOf(nc, cv, in.vipLink(lnk, cv))
		if err != nil {
			a.log.Warn(fmt.Sprintf("(%s) reload: %v", nc.Name, err))
			continue
		}
		vips = append(vips, v)
		if _, ok := before[v.ip()]; ok {
			delete(before, v.ip())
			continue
		}
		changed = true
		if err := a.dp.PutVIPOf(in.key, v.ip()); err != nil {
			a.log.Error(fmt.Sprintf("(%s) kernel VIP %v: %v", nc.Name, v, err))
		}
		if in.m.State() == vrrp.Master {
			if err := a.addrs.add(v); err != nil {
				a.log.Error(fmt.Sprintf("(%s) %v", nc.Name, err))
			}
			a.addrs.announce(v)
		}
		a.log.Info(fmt.Sprintf("(%s) VIP %v added", nc.Name, v))
	}
	for _, v := range before {
		changed = true
		if in.m.State() == vrrp.Master {
			if err := a.addrs.del(v); err != nil {
				a.log.Error(fmt.Sprintf("(%s) %v", nc.Name, err))
			}
		}
		if err := a.dp.ForgetVIP(v.ip()); err != nil {
			a.log.Warn(fmt.Sprintf("(%s) kernel VIP %v: %v", nc.Name, v, err))
		}
		a.log.Info(fmt.Sprintf("(%s) VIP %v removed", nc.Name, v))
	}
	in.vips = vips
	old := slices.Clone(in.advert.Addrs)
	in.advert.Addrs = in.advert.Addrs[:0]
	for _, v := range vips {
		in.advert.Addrs = append(in.advert.Addrs, v.ip())
	}
	if !slices.Equal(old, in.advert.Addrs) || oc.SkipCheckAdvAddr != nc.SkipCheckAdvAddr {
		changed = true
		if err := a.dp.CheckAdvertAddrs(in.key, old, in.advert.Addrs, nc.SkipCheckAdvAddr); err != nil {
			a.log.Error(fmt.Sprintf("(%s) %v", nc.Name, err))
		}
	}
	return changed
}

// remove resigns an instance and takes away what it had: its VIPs, its
// kernel entries and, when no other instance uses it, its interface's socket.
func (a *Agent) remove(in *instance, now time.Duration) {
	a.apply(in, in.m.Stop(now))
	a.flush()
	for _, v := range in.vips {
		if err := a.addrs.del(v); err != nil {
			a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		}
		a.dp.ForgetVIP(v.ip())
	}
	if in.prober != nil {
		in.prober.close()
	}
	a.deleteKernelEntries(in)
	a.removeVMAC(in)
}
