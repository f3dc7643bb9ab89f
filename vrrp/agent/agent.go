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
	"sync/atomic"
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
	// SysctlFile, if set, keeps the sysctl values found before xvrrp first
	// wrote them, across runs: a run stopped with KeepDatapath leaves them
	// set, and the run after it must put back the originals, not what it
	// found. Removed when they are put back.
	SysctlFile string
}

// Monotonic reads CLOCK_MONOTONIC, the clock of the kernel's timestamps,
// without a system call: Go's monotonic clock is CLOCK_MONOTONIC read through
// the vDSO, from an origin of its own, so the time since an instant whose
// CLOCK_MONOTONIC was read once is the kernel's clock. (unix.ClockGettime is
// a system call: a master of 255 instances at 10 ms made some 12,000 a
// second.) The origin was read just after that instant, so Monotonic is
// never behind the kernel's clock, and ahead by that gap, well under a
// microsecond.
func Monotonic() time.Duration { return monoOrigin + time.Since(monoStart) }

var monoStart, monoOrigin = func() (time.Time, time.Duration) {
	start := time.Now()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return start, time.Duration(ts.Nano())
}()

// Agent runs the instances of one configuration.
type Agent struct {
	cfg   *config.Config
	opt   Options
	log   *slog.Logger
	now   func() time.Duration
	dp    kernel
	nl    *netlink.Handle
	insts []*instance
	// pending are the instances whose interface does not exist yet
	// (dynamic_interfaces): each is made when its interface appears, tried
	// again at pendingAt (0: on the next link update only).
	pending   []*config.Instance
	pendingAt time.Duration
	byKey     map[loader.Key]*instance
	groups    map[string][]*instance
	addrs     addresses
	socks     map[sockKey]*rawSocket
	// queued are the instances with adverts waiting for flush.
	queued []*instance
	// fenceOnly are the interfaces that run no instance but carry the fence.
	fenceOnly map[int]bool
	// droppedEvents counts kernel events the reader dropped because the
	// loop was behind (written by the reader); droppedSeen is the count the
	// loop last acted on.
	droppedEvents atomic.Uint64
	droppedSeen   uint64
	// sweepAt is when the backups whose Master_Down_Timers the kernel runs
	// are next looked at (downtimer.go); 0: none is.
	sweepAt time.Duration
	// forcing is set while a sync group's members follow one of them.
	forcing bool
	// running is set once the instances have started.
	running bool
	// watchdogAt is when the event loop next tells Notify it is alive.
	watchdogAt time.Duration
	// statusReq asks the event loop for a Status; started is when Run began.
	statusReq chan chan Status
	started   time.Time
	// reloadReq brings Reload's configuration to the event loop; loopDone
	// is closed when Run returns.
	reloadReq chan reloadReq
	loopDone  chan struct{}

	health       trackerStates
	policy       *health.Policy // of cfg; nil: made when first needed
	trackers     *health.Trackers
	stopTrackers context.CancelFunc
	notify       *notifier
	groupState   map[string]vrrp.State // last state a sync group was notified in
	// sysctlWas are the values promote_secondaries and use_vmac found
	// before they wrote them (or an earlier run found: SysctlFile), by path,
	// in the order written; restoreSysctls puts them back.
	sysctlWas   map[string][]byte
	sysctlOrder []string
}

// New checks the configuration against this host, loads and attaches the
// datapath and prepares the instances; Run starts them.
func New(cfg *config.Config, opt Options) (_ *Agent, err error) {
	// The kernel's clock: its advert timestamps and the timerfd are on it.
	a := &Agent{cfg: cfg, opt: opt, log: opt.Logger, now: Monotonic,
		byKey: map[loader.Key]*instance{}, groups: map[string][]*instance{},
		socks: map[sockKey]*rawSocket{}, groupState: map[string]vrrp.State{},
		fenceOnly: map[int]bool{}, reloadReq: make(chan reloadReq), loopDone: make(chan struct{}),
		statusReq: make(chan chan Status)}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Instances) == 0 {
		return nil, errors.New("no vrrp_instance in the configuration")
	}
	if a.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	a.addrs = &hostAddrs{nl: a.nl, anns: map[int]*announcer{}}
	dp, err := loader.Load(loader.Options{PinDir: opt.PinDir, Logger: a.log, TC: opt.TC})
	if err != nil {
		a.nl.Close()
		return nil, err
	}
	a.dp = dp
	a.loadSysctls()
	defer func() {
		if err != nil {
			// A failed start leaves nothing behind: no VIP it kept from an
			// earlier run, no program attached, no pin.
			for _, in := range a.insts {
				for _, v := range in.held() {
					a.addrs.del(v)
				}
				a.removeVMAC(in)
			}
			a.restoreSysctls()
			a.closeAll()
			if rerr := a.dp.Remove(); rerr != nil {
				a.log.Warn("remove the datapath after a failed start", "error", rerr)
			}
		}
	}()
	attached := map[int]bool{}
	for _, in := range cfg.Instances {
		if a.waitForInterface(in) {
			continue
		}
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
		for _, v := range inst.held() {
			if err := a.addrs.prepare(v); err != nil {
				// Not fatal: announce retries when the time comes.
				a.log.Warn(fmt.Sprintf("(%s) %v", in.Name, err))
			}
		}
		a.byKey[inst.key] = inst
		if in.SyncGroup != "" {
			a.groups[in.SyncGroup] = append(a.groups[in.SyncGroup], inst)
		}
	}
	if err := a.fenceOthers(); err != nil {
		return nil, err
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
		if in.m.State() == vrrp.Init { // no action; running ones: reassess
			_, prio := a.verdict(in)
			in.m.SetPriority(a.now(), prio)
		}
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
	a.closeProbers()
	if a.stopTrackers != nil {
		a.stopTrackers()
	}
	if a.notify != nil {
		a.notify.close()
	}
	for _, s := range a.socks {
		s.close()
	}
	a.addrs.close()
	if a.nl != nil {
		a.nl.Close()
	}
}

// Run starts the instances and runs them until ctx ends, then stops them: each
// master resigns with priority 0 and its VIPs are removed, and the datapath is
// removed, unless Options.KeepDatapath.
func (a *Agent) Run(ctx context.Context) error {
	defer close(a.loopDone)
	events := make(chan loader.Heard, 1024)
	evCtx, stopEvents := context.WithCancel(context.Background())
	evDone := make(chan error, 1)
	go func() {
		evDone <- a.dp.ReadHeard(evCtx, func(e loader.Heard) {
			if e.MasterDown {
				// At becomes when the daemon got the word (masterDown):
				// this reader runs whenever the process does, while the
				// loop may be busy taking over the instances whose timers
				// ran out with this one.
				e.At = a.now()
				// Nothing else would wake us for it: wait.
				select {
				case events <- e:
				case <-evCtx.Done():
				}
				return
			}
			select {
			case events <- e:
			default: // the timers re-read peers: nothing is lost for good
				a.droppedEvents.Add(1)
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
	gone := make(chan addrGone, 64)
	if err := watchAddrs(linkDone, gone, a.log); err != nil {
		return err
	}

	// After loading: the verifier's work would count against RLIMIT_RTTIME.
	tune := &tuner{t: a.opt.Tuning, log: a.log, start: a.now(), recheck: make(chan struct{}, 1)}
	tune.undo = applyTuning(a.opt.Tuning, a.log, tune.recheck)
	tune.rt = a.opt.Tuning.RTPriority > 0
	defer func() { tune.undo() }()

	a.started = time.Now()
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
		a.syncProbers()
		a.arm(timer)
		tune.awake(a.now())
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
		case g := <-gone:
			a.removed(g)
		case u := <-a.trackers.C:
			a.track(u)
		case reply := <-a.statusReq:
			reply <- a.status()
		case r := <-a.reloadReq:
			r.done <- a.reload(r.cfg)
		case <-timer.C:
			if due := timer.at; due > 0 {
				now := a.now()
				tune.late(now, now-due)
			}
			timer.fired()
			a.expire()
			a.watchdog()
		}
	}
}

func linkUp(attrs *netlink.LinkAttrs) bool {
	return attrs.Flags&net.FlagUp != 0 && attrs.RawFlags&unix.IFF_RUNNING != 0
}

// arm sets the timer to the earliest deadline of any instance; a backup's
// Master_Down_Timer that the kernel runs counts only for the sweep.
func (a *Agent) arm(t *timer) {
	if err := t.set(a.nextWake()); err != nil {
		a.log.Error("arm timer", "error", err)
	}
}

// nextWake is when the event loop must next wake by itself: the earliest
// deadline of any instance, the watchdog's, the sweep's, a pending
// instance's (dynamic_interfaces); 0: never.
func (a *Agent) nextWake() time.Duration {
	next := a.watchdogAt
	if a.pendingAt != 0 && (next == 0 || a.pendingAt < next) {
		next = a.pendingAt
	}
	sweep := false
	for _, in := range a.insts {
		down := in.m.Deadline()
		if in.timedByKernel() {
			down, sweep = 0, true
		}
		for _, d := range []time.Duration{down, in.garpAt, in.sendFaultUntil, in.rebindAt, in.handoverUntil, in.extrasAt()} {
			if d != 0 && (next == 0 || d < next) {
				next = d
			}
		}
	}
	switch {
	case !sweep:
		a.sweepAt = 0
	case a.sweepAt == 0:
		a.sweepAt = a.now() + sweepEvery
	}
	if d := a.sweepAt; d != 0 && (next == 0 || d < next) {
		next = d
	}
	return next
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
	}
	a.flush()
	// The masters' priority-0 adverts are out: their VIPs stay until their
	// successors announce themselves, or their leases run out.
	a.awaitHandovers()
	for _, in := range a.insts {
		// Whatever the state, no VIP of ours stays behind.
		for _, v := range in.held() {
			errs = append(errs, a.addrs.del(v))
		}
	}
	a.flush()
	for _, in := range a.insts {
		a.removeVMAC(in)
	}
	a.restoreSysctls()
	a.closeAll()
	errs = append(errs, a.dp.Remove())
	return errors.Join(errs...)
}

func (a *Agent) event(e loader.Heard) {
	in := a.byKey[e.Key]
	if in == nil {
		return
	}
	if e.MasterDown {
		a.masterDown(in, e.At)
		return
	}
	if e.Lost {
		a.livenessLost(in, e)
		return
	}
	now := a.now()
	lower := in.m.State() == vrrp.Master && e.Priority != 0 && e.Priority < in.m.Priority()
	if lower {
		if script := in.cfg.Notify.MasterRxLowerPri; script != nil || len(a.notify.fifos) > 0 {
			a.notify.rxLowerPri(in.cfg, script, in.m.Priority())
		}
	}
	a.apply(in, in.m.Advert(now, e.Heard))
	a.handedOver(in, now)
	if lower && in.m.State() == vrrp.Master {
		a.lowerPrioGarp(in, e, now)
	}
}

func (a *Agent) expire() {
	now := a.now()
	if a.pendingAt != 0 && a.pendingAt <= now {
		a.makePending(now)
	}
	var graced []string
	var late time.Duration
	sweep := a.sweepAt != 0 && a.sweepAt <= now
	if sweep {
		a.sweepAt = 0 // arm sets the next
	}
	// A master hears every advert of another router as an event (CONTEST,
	// RESIGN): it reads the kernel's last advert at its timer only after the
	// reader dropped some, rather than a bpf() call per instance and advert.
	reread := false
	if n := a.droppedEvents.Load(); n != a.droppedSeen {
		a.droppedSeen, reread = n, true
	}
	for _, in := range a.insts {
		// A backup whose timer the kernel runs has a deadline gone stale:
		// it is looked at on its MASTER_DOWN, or by the sweep, not each
		// time the loop wakes for another instance.
		if d := in.m.Deadline(); d != 0 && d <= now && (sweep || !in.timedByKernel()) {
			was := in.m.Graced()
			if in.m.State() == vrrp.Backup {
				a.expireBackup(in, now)
			} else {
				var last *vrrp.Heard
				if reread || in.m.State() != vrrp.Master {
					if h, err := a.dp.LastAdvert(in.key); err == nil {
						last = &h
					}
				}
				a.apply(in, in.m.Expire(now, last))
			}
			if !was && in.m.Graced() {
				graced, late = append(graced, in.cfg.Name), max(late, now-d)
			}
		}
		if in.garpAt != 0 && in.garpAt <= now {
			a.garpDue(in, now)
		}
		a.handedOver(in, now)
		a.extrasDue(in, now)
		if in.rebindAt != 0 && in.rebindAt <= now {
			a.rebind(in, now)
			a.reassess("interface " + in.cfg.Interface + " re-created")
		}
		if in.sendFaultUntil != 0 && in.sendFaultUntil <= now {
			in.sendFault, in.sendFaultUntil = "", 0
			a.reassess("retrying adverts after send errors")
		}
	}
	if len(graced) > 0 {
		a.log.Warn("stalled: master down timers fired late, giving the masters one more advert interval", "late", late, "instances", len(graced), "first", graced[0])
	}
}
