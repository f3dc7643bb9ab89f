// Package agent runs VRRP instances: the state machines of package vrrp on the
// kernel's timestamps, adverts from raw sockets, VIPs through netlink,
// gratuitous ARPs and NAs, and the lease in the kernel's instances map.
//
// Everything happens on one goroutine, Run's: kernel events, timers, link
// changes and the stop all arrive there, so no state is shared.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// Options configure an Agent.
type Options struct {
	PinDir string
	Logger *slog.Logger
	// KeepDatapath leaves the datapath, the VIPs and the lease in place on
	// stop, without a priority-0 advert, so that a restarted daemon takes over
	// with no gap.
	KeepDatapath bool
	TC           loader.TCMode
	// Tuning is applied when Run starts and undone when it returns; the zero
	// value tunes nothing (see TuningOf).
	Tuning Tuning
	// Notify, if set, is told of the daemon's life as systemd's sd_notify
	// protocol says it: "READY=1" once every instance has started,
	// "WATCHDOG=1" every Watchdog from the event loop (so a daemon whose
	// loop is stuck stops saying it), "STOPPING=1".
	Notify   func(state string)
	Watchdog time.Duration
	// StatusSocket, if set, is where the daemon serves its Status (mode
	// 0600); ConfigFile is the configuration it names.
	StatusSocket string
	ConfigFile   string
	// LinkRcvBuf sets the link-update socket's receive buffer when not 0, for
	// tests that make it overflow.
	LinkRcvBuf int
}

// Monotonic reads CLOCK_MONOTONIC, the clock of the kernel's timestamps.
func Monotonic() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// Agent runs the instances of one configuration.
type Agent struct {
	cfg    *config.Config
	opt    Options
	log    *slog.Logger
	now    func() time.Duration
	dp     *loader.Datapath
	nl     *netlink.Handle
	insts  []*instance
	byKey  map[loader.InstanceKey]*instance
	groups map[string][]*instance
	anns   map[int]*announcer
	socks  map[sockKey]*rawSocket
	// queued are the instances with adverts waiting for flush.
	queued []*instance
	// forcing is set while a sync group's members follow one of them.
	forcing bool
	// running is set once the instances have started.
	running bool
	// watchdogAt is when the event loop next tells Notify it is alive.
	watchdogAt time.Duration
	// statusReq asks the event loop for a Status; started is when Run began.
	statusReq chan chan Status
	started   time.Time

	health       trackerStates
	trackers     *health.Trackers
	stopTrackers context.CancelFunc
	notify       *notifier
	groupState   map[string]vrrp.State // last state a sync group was notified in
}

// New checks the configuration against this host, loads and attaches the
// datapath and prepares the instances; Run starts them.
func New(cfg *config.Config, opt Options) (_ *Agent, err error) {
	// The kernel's clock: its advert timestamps and the timerfd are on it.
	a := &Agent{cfg: cfg, opt: opt, log: opt.Logger, now: Monotonic,
		byKey: map[loader.InstanceKey]*instance{}, groups: map[string][]*instance{},
		anns: map[int]*announcer{}, socks: map[sockKey]*rawSocket{}, groupState: map[string]vrrp.State{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Instances) == 0 {
		return nil, errors.New("no vrrp_instance in the configuration")
	}
	if a.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	a.dp, err = loader.Load(loader.Options{PinDir: opt.PinDir, Logger: a.log, TC: opt.TC})
	if err != nil {
		a.nl.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			// A failed start leaves nothing behind: no VIP it kept from an
			// earlier run, no program attached, no pin.
			for _, in := range a.insts {
				for _, v := range in.vips {
					v.del()
				}
			}
			a.closeAll()
			if rerr := a.dp.Remove(); rerr != nil {
				a.log.Warn("remove the datapath after a failed start", "error", rerr)
			}
		}
	}()
	attached := map[int]bool{}
	for _, in := range cfg.Instances {
		inst, err := a.newInstance(in)
		if err != nil {
			return nil, fmt.Errorf("(%s) %w", in.Name, err)
		}
		a.insts = append(a.insts, inst)
		if !attached[inst.ifi.Index] {
			if err := a.dp.Attach(inst.ifi.Index); err != nil {
				return nil, err
			}
			attached[inst.ifi.Index] = true
		}
		for _, v := range inst.vips {
			if err := a.announcer(v.link).open(v.ip()); err != nil {
				// Not fatal: announce retries when the time comes.
				a.log.Warn(fmt.Sprintf("(%s) %v", in.Name, err))
			}
		}
		a.byKey[inst.key] = inst
		if in.SyncGroup != "" {
			a.groups[in.SyncGroup] = append(a.groups[in.SyncGroup], inst)
		}
	}
	if err := a.startTrackers(); err != nil {
		return nil, err
	}
	if a.notify, err = newNotifier(cfg, a.log); err != nil {
		return nil, err
	}
	return a, nil
}

// startTrackers starts the health trackers and takes their first states: the
// instances start at the priority these give.
func (a *Agent) startTrackers() error {
	a.health = newHealth()
	for _, in := range a.cfg.Instances {
		a.trackedLinks(in.TrackInterfaces)
	}
	for _, g := range a.cfg.SyncGroups {
		a.trackedLinks(g.TrackInterfaces)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t, err := health.Start(ctx, a.cfg, a.log)
	if err != nil {
		cancel()
		return err
	}
	a.trackers, a.stopTrackers = t, cancel
	for _, u := range t.Initial {
		a.health.set(u)
	}
	for _, in := range a.insts {
		_, prio := a.verdict(in)
		in.m.SetPriority(a.now(), prio) // in Init: no action
	}
	return nil
}

func (a *Agent) trackedLinks(ti []config.TrackInterface) {
	for _, t := range ti {
		l, err := a.nl.LinkByName(t.Name)
		a.health.ifUp[t.Name] = err == nil && linkUp(l.Attrs())
	}
}

func (a *Agent) closeAll() {
	if a.stopTrackers != nil {
		a.stopTrackers()
	}
	if a.notify != nil {
		a.notify.close()
	}
	for _, s := range a.socks {
		s.close()
	}
	for _, an := range a.anns {
		an.close()
	}
	a.nl.Close()
}

// Run starts the instances and runs them until ctx ends, then stops them: each
// master resigns with priority 0 and its VIPs are removed, and the datapath is
// removed, unless Options.KeepDatapath.
func (a *Agent) Run(ctx context.Context) error {
	events := make(chan loader.Event, 1024)
	evCtx, stopEvents := context.WithCancel(context.Background())
	evDone := make(chan error, 1)
	go func() {
		evDone <- a.dp.ReadEvents(evCtx, func(e loader.Event) {
			select {
			case events <- e:
			default: // the timers re-read peers: nothing is lost for good
			}
		})
	}()
	defer func() {
		stopEvents()
		<-evDone
	}()

	links := make(chan linkState, 64)
	linkDone := make(chan struct{})
	defer close(linkDone)
	if err := watchLinks(linkDone, links, a.log, a.opt.LinkRcvBuf); err != nil {
		return err
	}

	// After loading: the verifier's work would count against RLIMIT_RTTIME.
	defer applyTuning(a.opt.Tuning, a.log)()

	a.started, a.statusReq = time.Now(), make(chan chan Status)
	if a.opt.StatusSocket != "" {
		stCtx, stopStatus := context.WithCancel(context.Background())
		defer stopStatus()
		if err := a.serveStatus(stCtx, a.opt.StatusSocket); err != nil {
			a.log.Warn(err.Error())
		}
	}

	if d := a.cfg.Global.StartupDelay; d > 0 {
		a.log.Info("delaying startup", "delay", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return a.stop()
		}
	}
	a.start()
	a.notifyState("READY=1")

	timer, err := newTimer()
	if err != nil {
		return err
	}
	defer timer.close()
	for {
		a.flush()
		a.arm(timer)
		select {
		case <-ctx.Done():
			return a.stop()
		case e := <-events:
			a.event(e)
		drain:
			for {
				select {
				case e := <-events:
					a.event(e)
				default:
					break drain
				}
			}
		case l := <-links:
			a.link(l)
		case u := <-a.trackers.C:
			a.track(u)
		case reply := <-a.statusReq:
			reply <- a.status()
		case <-timer.C:
			timer.fired()
			a.expire()
			a.watchdog()
		}
	}
}

func linkUp(attrs *netlink.LinkAttrs) bool {
	return attrs.Flags&net.FlagUp != 0 && attrs.RawFlags&unix.IFF_RUNNING != 0
}

// arm sets the timer to the earliest deadline of any instance.
func (a *Agent) arm(t *timer) {
	next := a.watchdogAt
	for _, in := range a.insts {
		for _, d := range []time.Duration{in.m.Deadline(), in.garpAt, in.sendFaultUntil, in.rebindAt} {
			if d != 0 && (next == 0 || d < next) {
				next = d
			}
		}
	}
	if err := t.set(next); err != nil {
		a.log.Error("arm timer", "error", err)
	}
}

func (a *Agent) start() {
	a.running = true
	now := a.now()
	for _, in := range a.insts {
		if f := a.groupFault(in); f != "" {
			// SetFault(false) takes it to BACKUP when the fault clears.
			a.apply(in, in.m.SetFault(now, true, f))
			continue
		}
		if in.resume {
			a.apply(in, in.m.Resume(now))
		} else {
			a.apply(in, in.m.Start(now))
		}
	}
}

func (a *Agent) notifyState(state string) {
	if a.opt.Notify == nil {
		return
	}
	a.opt.Notify(state)
	if state == "READY=1" && a.opt.Watchdog > 0 {
		a.watchdogAt = a.now()
		a.watchdog()
	}
}

// watchdog tells Notify the event loop is alive, when it is time to.
func (a *Agent) watchdog() {
	if a.watchdogAt == 0 || a.now() < a.watchdogAt {
		return
	}
	a.opt.Notify("WATCHDOG=1")
	a.watchdogAt = a.now() + a.opt.Watchdog
}

func (a *Agent) stop() error {
	a.notifyState("STOPPING=1")
	now := a.now()
	var errs []error
	if a.opt.KeepDatapath {
		a.log.Info("stopping, leaving the datapath, VIPs and leases for the next run")
		a.closeAll()
		return a.dp.Close()
	}
	for _, in := range a.insts {
		a.apply(in, in.m.Stop(now))
		// Whatever the state, no VIP of ours stays behind.
		for _, v := range in.vips {
			errs = append(errs, v.del())
		}
	}
	a.flush()
	a.closeAll()
	errs = append(errs, a.dp.Remove())
	return errors.Join(errs...)
}

func (a *Agent) event(e loader.Event) {
	in := a.byKey[e.Key]
	if in == nil {
		return
	}
	now := a.now()
	lower := in.m.State() == vrrp.Master && e.Priority != 0 && e.Priority < in.m.Priority()
	if lower {
		if script := in.cfg.Notify.MasterRxLowerPri; script != nil || len(a.notify.fifos) > 0 {
			a.notify.rxLowerPri(in.cfg, script, in.m.Priority())
		}
	}
	a.apply(in, in.m.Advert(now, heardOf(e.Key.Family, e.Addr, e.Priority, e.IntervalCs, e.TimeNs)))
	if lower && in.m.State() == vrrp.Master {
		a.lowerPrioGarp(in, e, now)
	}
}

// lowerPrioGarp answers another master of lower priority as keepalived does:
// besides the advert that makes it step down, a burst of garp_lower_prio_repeat
// gratuitous ARPs, because the hosts it took over may still send to its MAC — a
// master that was frozen and woke never changed state, so nothing else would
// tell them. At most one burst per advert interval, so that a flood of such
// adverts is not a flood of ARP.
func (a *Agent) lowerPrioGarp(in *instance, e loader.Event, now time.Duration) {
	g := in.cfg.Garp
	if g.LowerPrioRepeat <= 0 || now < in.lowerGarpNext {
		return
	}
	in.lowerGarpNext = now + in.cfg.Interval
	for range g.LowerPrioRepeat {
		for _, v := range in.vips {
			if err := a.announcer(v.link).announce(v.ip()); err != nil {
				a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			}
		}
	}
	a.log.Info(fmt.Sprintf("(%s) Received advert from %v with lower priority %d, ours %d, forcing new election",
		in.cfg.Name, heardOf(e.Key.Family, e.Addr, e.Priority, 0, 0).Addr, e.Priority, in.m.Priority()))
}

func heardOf(family uint8, addr [16]byte, prio uint8, intervalCs uint16, at uint64) vrrp.Heard {
	h := vrrp.Heard{Priority: prio, Interval: time.Duration(intervalCs) * vrrp.IntervalUnitV3, At: time.Duration(at)}
	if family == loader.FamilyIPv4 {
		h.Addr = netip.AddrFrom4([4]byte(addr[:4]))
	} else {
		h.Addr = netip.AddrFrom16(addr)
	}
	return h
}

func (a *Agent) expire() {
	now := a.now()
	for _, in := range a.insts {
		if d := in.m.Deadline(); d != 0 && d <= now {
			var last *vrrp.Heard
			if p, err := a.dp.Peer(in.key); err == nil {
				h := heardOf(in.key.Family, p.Addr, p.Priority, p.IntervalCs, p.LastSeenNs)
				last = &h
			}
			a.apply(in, in.m.Expire(now, last))
		}
		if in.garpAt != 0 && in.garpAt <= now {
			a.garpDue(in, now)
		}
		if in.rebindAt != 0 && in.rebindAt <= now {
			a.rebind(in, now)
			a.reassess("interface " + in.cfg.Interface + " re-created")
		}
		if in.sendFaultUntil != 0 && in.sendFaultUntil <= now {
			in.sendFault, in.sendFaultUntil = "", 0
			a.reassess("retrying adverts after send errors")
		}
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// faultOf says why the instance must be in FAULT, or "" if it need not: its own
// interface is down, or a tracker says so.
func (a *Agent) faultOf(in *instance) string {
	switch {
	case in.gone:
		return "interface " + in.cfg.Interface + " deleted"
	case !in.up:
		return "interface " + in.ifi.Name + " down"
	case in.sendFault != "":
		return in.sendFault
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
	for _, m := range a.groups[in.cfg.SyncGroup] {
		if f := a.faultOf(m); f != "" {
			return fmt.Sprintf("sync group %s: (%s) %s", in.cfg.SyncGroup, m.cfg.Name, f)
		}
	}
	return ""
}

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
			a.advert(in, act.Priority, now)
		}
	}
	if moved != nil && moved.To == vrrp.Master {
		// After the advert: the VIPs are up and the lease is fresh.
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
	if moved == nil || a.forcing || in.cfg.SyncGroup == "" {
		return
	}
	a.forcing = true
	defer func() { a.forcing = false }()
	g := in.cfg.SyncGroup
	for _, o := range a.groups[g] {
		if o != in {
			a.apply(o, o.m.Force(now, moved.To, "sync group "+g))
		}
	}
	// The group's own notification, once all its members are there.
	for _, o := range a.groups[g] {
		if o.m.State() != moved.To {
			return
		}
	}
	if a.groupState[g] != moved.To {
		a.groupState[g] = moved.To
		a.log.Info(fmt.Sprintf("(%s) Sync group entering %s STATE", g, stateName(moved.To)))
		a.notify.group(in.cfg.Group, stateName(moved.To))
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
	switch act.To {
	case vrrp.Master:
		// The lease first: the fence lets the VIPs' traffic and our
		// gratuitous ARPs through only for a MASTER with a lease.
		a.putKernel(in, loader.StateMaster, now)
		for _, v := range in.vips {
			if err := v.add(); err != nil {
				a.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			}
		}
	default:
		// Fence first, then remove the addresses.
		a.putKernel(in, kernelState(act.To), now)
		if act.From == vrrp.Master {
			for _, v := range in.vips {
				if err := v.del(); err != nil {
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
	a.log.Info(msg, "from", act.From.String(), "why", act.Why)
	a.notify.instance(in.cfg, stateName(act.To), in.m.Priority())
}

func kernelState(s vrrp.State) uint8 {
	switch s {
	case vrrp.Backup:
		return loader.StateBackup
	case vrrp.Master:
		return loader.StateMaster
	case vrrp.Fault:
		return loader.StateFault
	}
	return loader.StateInit
}

// leaseFor is how long a master's lease lasts past each advert (vrrp.Lease).
func leaseFor(in *instance) time.Duration {
	return vrrp.Lease(in.cfg.Version, in.cfg.Interval, in.cfg.DownTimerAdverts)
}

func (a *Agent) putKernel(in *instance, state uint8, now time.Duration) {
	in.kernel.State = state
	in.kernel.Priority = in.m.Priority()
	if state == loader.StateMaster {
		in.kernel.LeaseUntilNs = uint64(now + leaseFor(in))
	} else {
		in.kernel.LeaseUntilNs = 0
	}
	if err := a.dp.PutInstance(in.key, in.kernel); err != nil {
		a.log.Error(fmt.Sprintf("(%s) update kernel instance: %v", in.cfg.Name, err))
	}
}

func (a *Agent) advert(in *instance, prio uint8, now time.Duration) {
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
	// from a time before the send: the lease must end before any backup's
	// Master_Down_Interval, which runs from when the advert reached it.
	in.renew = prio != 0 && in.m.State() == vrrp.Master
	in.queuedAt = now
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
	for range in.garpLeft {
		for _, v := range in.vips {
			if err := a.announcer(v.link).announce(v.ip()); err != nil {
				a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			}
		}
	}
	in.garpBurst++
	switch {
	case in.garpBurst == 1 && g.MasterDelay > 0 && !a.cfg.Global.MinGarp:
		in.garpAt, in.garpLeft = now+g.MasterDelay, max(1, g.MasterRepeat)
	case g.MasterRefresh > 0 && !a.cfg.Global.MinGarp:
		in.garpAt, in.garpLeft = now+g.MasterRefresh, max(1, g.MasterRefreshRepeat)
	}
}

func (a *Agent) announcer(l netlink.Link) *announcer {
	idx := l.Attrs().Index
	an := a.anns[idx]
	if an == nil {
		ifi, err := net.InterfaceByIndex(idx)
		if err != nil {
			ifi = &net.Interface{Index: idx, Name: l.Attrs().Name, HardwareAddr: l.Attrs().HardwareAddr}
		}
		an = &announcer{ifi: ifi}
		a.anns[idx] = an
	}
	return an
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
	for _, in := range queued {
		in.flushing = false
		_, ok, failures := in.sender.outcome()
		a.sendOutcome(in, ok, failures, now)
		if ok && in.renew && in.m.State() == vrrp.Master {
			a.putKernel(in, loader.StateMaster, in.queuedAt)
		}
		in.renew = false
	}
}
