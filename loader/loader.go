package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The generated types, under the names the rest of xvrrp uses.
type (
	InstanceKey = bpfXvrrpInstanceKey
	Instance    = bpfXvrrpInstance
	Peer        = bpfXvrrpPeer
	VIPKey      = bpfXvrrpVipKey
	UnicastKey  = bpfXvrrpUnicastKey
	Event       = bpfXvrrpEvent
)

// DefaultPinDir is where a single xvrrp on a host pins its maps and links.
const DefaultPinDir = "/sys/fs/bpf/xvrrp"

// ErrNotPinned is returned by an observing Load when no datapath is pinned in
// the pin directory.
var ErrNotPinned = errors.New("no datapath pinned")

// Options configure Load.
type Options struct {
	// PinDir holds the pinned maps and links; DefaultPinDir when empty. Give each
	// daemon on a host its own.
	PinDir string
	Logger *slog.Logger
	// NoPin loads maps without pinning, for tests that run programs with prog.Run.
	NoPin bool
	// TC chooses TCX or clsact for the fence; TCAuto prefers TCX.
	TC TCMode
	// Observe opens the pinned maps of a datapath that another process owns, to
	// read them (counters, status): it takes no lock on the pin directory, so it
	// must change nothing.
	Observe bool
}

// Datapath is the loaded programs and maps.
type Datapath struct {
	objs   bpfObjects
	pinDir string
	log    *slog.Logger
	links  map[string]link.Link // by pin name, e.g. "2_xdp"
	tcMode TCMode
	pin    *pinDir // nil with NoPin
}

// Load loads the programs and the maps, creating or reusing pinned maps under the
// pin directory: maps pinned by an earlier run are adopted with their contents.
// It returns an error wrapping ErrNotBPFFS when the pin directory is not on bpffs;
// when its parent is /sys/fs/bpf and nothing is mounted there, it mounts bpffs, as
// systemd does.
//
// The pins must outlive the process, or a crashed master would not stay fenced:
// started in a mount namespace of its own (ip netns exec), xvrrp pins in the
// mount namespace it was started from, and PinDir says how this process reaches
// it. Where no bpffs would outlive the process, Load returns an error wrapping
// ErrPrivateBPFFS that says what to do.
//
// A pinned map whose layout this build does not share (an older xvrrp's) is
// replaced, and the replacement logged, unless it is the instances map and
// holds a master's live lease: then Load returns an error wrapping
// ebpf.ErrMapIncompatible that says what to do. An observing Load replaces
// nothing.
//
// Unless opt.Observe, the pin directory is locked until Close or Remove: Load
// returns an error wrapping ErrPinDirInUse, naming the holder's pid, when another
// datapath holds it, before adopting or changing anything.
func Load(opt Options) (_ *Datapath, err error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Datapath{pinDir: opt.PinDir, log: log, links: map[string]link.Link{}, tcMode: opt.TC}
	if d.pinDir == "" {
		d.pinDir = DefaultPinDir
	}
	collOpts := &ebpf.CollectionOptions{}
	if !opt.NoPin {
		if d.pin, err = openPinDir(d.pinDir, opt.Observe, log); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				d.pin.close()
			}
		}()
		d.pinDir = d.pin.path
		collOpts.Maps.PinPath = d.pinDir
		if opt.Observe {
			// An observer reads what a daemon pinned; it never makes maps.
			if _, err := os.Stat(filepath.Join(d.pinDir, "instances")); err != nil {
				return nil, fmt.Errorf("pin directory %s: %w", opt.PinDir, ErrNotPinned)
			}
		}
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	if opt.NoPin {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	swap := &pinSwap{}
	if !opt.NoPin {
		if swap, err = replaceIncompatible(spec, d.pinDir, opt.Observe, log); err != nil {
			return nil, err
		}
	}
	if err := spec.LoadAndAssign(&d.objs, collOpts); err != nil {
		swap.restore()
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load BPF objects: %+v", ve)
		}
		return nil, fmt.Errorf("load BPF objects: %w", err)
	}
	swap.drop()
	return d, nil
}

// TCMode chooses how the fence programs are attached.
type TCMode int

const (
	// TCAuto uses TCX and falls back to clsact + cls_bpf on kernels without it.
	TCAuto TCMode = iota
	// TCX requires TCX links (Linux 6.6 and later).
	TCX
	// TCClsact uses a clsact qdisc with direct-action cls_bpf filters, as on
	// kernels before TCX.
	TCClsact
)

// clsPriority and clsHandle identify xvrrp's cls_bpf filters on an interface:
// the priority is VRRP's IP protocol number.
const (
	clsPriority = 112
	clsHandle   = 1
)

// Attach attaches the XDP validator and both fence programs to the interface.
// Links pinned by an earlier run are adopted and switched to this run's programs
// in place, so the interface is never without them; a pin whose link is gone is
// replaced. cls_bpf filters are replaced in place for the same reason.
func (d *Datapath) Attach(ifindex int) error {
	if err := d.attachLink(ifindex, "xdp", d.objs.XdpVrrp, func() (link.Link, error) { return d.attachXDP(ifindex) }); err != nil {
		return err
	}
	return d.AttachFence(ifindex)
}

// AttachFence attaches only the fence, ingress and egress, to an interface
// that runs no instance: the node may still carry a VIP's traffic through it
// (a VIP with dev, a client routed to another interface, replies routed out of
// it), and a node that is not master must answer for a VIP through none.
func (d *Datapath) AttachFence(ifindex int) error {
	for _, tc := range []struct {
		dir    string
		prog   *ebpf.Program
		attach ebpf.AttachType
		parent uint32
	}{
		{"ingress", d.objs.TcFenceIngress, ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS},
		{"egress", d.objs.TcFenceEgress, ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS},
	} {
		name := "tc_" + tc.dir
		// First in the TCX chain: a program before the fence could let VIP
		// traffic past it, or end the chain before the ingress program
		// records an advert (a false failover).
		if d.tcMode != TCClsact {
			err := d.attachLink(ifindex, name, tc.prog, func() (link.Link, error) {
				return link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: tc.prog, Attach: tc.attach, Anchor: link.Head()})
			})
			if err == nil {
				// One mechanism per interface: drop a filter a clsact run left.
				if err := d.deleteFilter(ifindex, tc.dir, tc.parent); err != nil {
					return err
				}
				continue
			}
			if d.tcMode == TCX || !errors.Is(err, link.ErrNotSupported) {
				return err
			}
			d.log.Warn("TCX not supported, using clsact and cls_bpf", "ifindex", ifindex, "error", err)
		}
		if err := d.attachFilter(ifindex, tc.dir, tc.prog, tc.parent); err != nil {
			return err
		}
		if err := d.unpinLink(ifindex, name); err != nil {
			return err
		}
	}
	return nil
}

func linkPinName(ifindex int, name string) string { return strconv.Itoa(ifindex) + "_" + name }

// attachLink adopts the pinned link for ifindex and name, or attaches and pins a
// new one.
func (d *Datapath) attachLink(ifindex int, name string, prog *ebpf.Program, attach func() (link.Link, error)) error {
	name = linkPinName(ifindex, name)
	pin := filepath.Join(d.pinDir, "links", name)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		err := l.Update(prog)
		if err == nil {
			d.links[name] = l
			d.log.Info("adopted pinned link", "link", name)
			return nil
		}
		// A stale pin: its link was detached (ENOLINK), e.g. with its interface.
		d.log.Info("replacing stale pinned link", "link", name, "error", err)
		l.Close()
	}
	os.Remove(pin)
	l, err := attach()
	if err != nil {
		return fmt.Errorf("attach %s: %w", name, err)
	}
	if !d.unpinned() {
		if err := os.MkdirAll(filepath.Dir(pin), 0o700); err != nil {
			l.Close()
			return err
		}
		if err := l.Pin(pin); err != nil {
			l.Close()
			return fmt.Errorf("pin %s: %w", name, err)
		}
	}
	d.links[name] = l
	return nil
}

// unpinLink detaches and unpins a link this or an earlier run pinned.
func (d *Datapath) unpinLink(ifindex int, name string) error {
	name = linkPinName(ifindex, name)
	pin := filepath.Join(d.pinDir, "links", name)
	l, ok := d.links[name]
	if !ok {
		var err error
		if l, err = link.LoadPinnedLink(pin, nil); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				os.Remove(pin) // not a link: nothing to detach
			}
			return nil
		}
	}
	delete(d.links, name)
	err := l.Unpin()
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.Close())
}

// attachFilter attaches prog as xvrrp's direct-action cls_bpf filter under a
// clsact qdisc, replacing an earlier run's filter atomically. The program is
// pinned as <ifindex>_tc_<dir>_cls, so that Remove finds the filter after a
// restart.
func (d *Datapath) attachFilter(ifindex int, dir string, prog *ebpf.Program, parent uint32) error {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add clsact qdisc to ifindex %d: %w", ifindex, err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    parent,
			Handle:    clsHandle,
			Priority:  clsPriority,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         "tc_fence_" + dir,
		DirectAction: true,
	}
	if err := netlink.FilterReplace(filter); err != nil {
		return fmt.Errorf("attach cls_bpf %s filter to ifindex %d: %w", dir, ifindex, err)
	}
	if !d.unpinned() {
		pin := filepath.Join(d.pinDir, "links", linkPinName(ifindex, "tc_"+dir+"_cls"))
		os.Remove(pin)
		if err := os.MkdirAll(filepath.Dir(pin), 0o700); err != nil {
			return err
		}
		clone, err := prog.Clone()
		if err != nil {
			return err
		}
		defer clone.Close()
		if err := clone.Pin(pin); err != nil {
			return fmt.Errorf("pin %s: %w", pin, err)
		}
	}
	return nil
}

// deleteFilter removes xvrrp's cls_bpf filter from an interface, and the clsact
// qdisc with it when no other filter is left under it.
func (d *Datapath) deleteFilter(ifindex int, dir string, parent uint32) error {
	os.Remove(filepath.Join(d.pinDir, "links", linkPinName(ifindex, "tc_"+dir+"_cls")))
	lnk, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil // the interface is gone, and its filters with it
	}
	filters, err := netlink.FilterList(lnk, parent)
	if err != nil {
		return nil // no clsact qdisc
	}
	for _, f := range filters {
		bf, ok := f.(*netlink.BpfFilter)
		if !ok || bf.Priority != clsPriority || bf.Handle != clsHandle || !strings.HasPrefix(bf.Name, "tc_fence_") {
			continue
		}
		if err := netlink.FilterDel(bf); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete cls_bpf %s filter from ifindex %d: %w", dir, ifindex, err)
		}
	}
	d.deleteIdleClsact(lnk)
	return nil
}

func (d *Datapath) deleteIdleClsact(lnk netlink.Link) {
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		if fs, err := netlink.FilterList(lnk, parent); err != nil || len(fs) > 0 {
			return
		}
	}
	netlink.QdiscDel(&netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lnk.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	})
}

func (d *Datapath) unpinned() bool { return !onBPFFS(d.pinDir) }

func (d *Datapath) attachXDP(ifindex int) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.XdpVrrp, Interface: ifindex, Flags: link.XDPDriverMode})
	if err == nil {
		return l, nil
	}
	d.log.Warn("native XDP not available, using generic XDP", "ifindex", ifindex, "error", err)
	return link.AttachXDP(link.XDPOptions{Program: d.objs.XdpVrrp, Interface: ifindex, Flags: link.XDPGenericMode})
}

// Detach removes the programs from an interface and their pins.
func (d *Datapath) Detach(ifindex int) error {
	return errors.Join(
		d.unpinLink(ifindex, "xdp"),
		d.unpinLink(ifindex, "tc_ingress"),
		d.unpinLink(ifindex, "tc_egress"),
		d.deleteFilter(ifindex, "ingress", netlink.HANDLE_MIN_INGRESS),
		d.deleteFilter(ifindex, "egress", netlink.HANDLE_MIN_EGRESS),
	)
}

// Close releases this process's handles; pinned links and maps stay, so the
// datapath keeps working for the next run to adopt.
func (d *Datapath) Close() error {
	for _, l := range d.links {
		l.Close()
	}
	return errors.Join(d.objs.Close(), d.unlock())
}

// unlock releases the pin directory for the next daemon.
func (d *Datapath) unlock() error {
	if d.pin == nil {
		return nil
	}
	err := d.pin.close()
	d.pin = nil
	return err
}

// Remove detaches every link this datapath pinned and unpins every map, leaving
// nothing under the pin directory, then closes.
func (d *Datapath) Remove() error {
	var errs []error
	pins, _ := filepath.Glob(filepath.Join(d.pinDir, "links", "*"))
	for _, pin := range pins {
		var (
			ifindex int
			dir     string
		)
		if n, _ := fmt.Sscanf(filepath.Base(pin), "%d_tc_%s", &ifindex, &dir); n == 2 && strings.HasSuffix(dir, "_cls") {
			dir = strings.TrimSuffix(dir, "_cls")
			parent := uint32(netlink.HANDLE_MIN_INGRESS)
			if dir == "egress" {
				parent = netlink.HANDLE_MIN_EGRESS
			}
			errs = append(errs, d.deleteFilter(ifindex, dir, parent))
			continue
		}
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			errs = append(errs, l.Unpin(), l.Close())
		} else {
			os.Remove(pin)
		}
	}
	for _, l := range d.links {
		l.Close()
	}
	d.links = map[string]link.Link{}
	for _, m := range []*ebpf.Map{d.objs.Instances, d.objs.Peers, d.objs.Vips, d.objs.UnicastPeers, d.objs.Stats, d.objs.InstanceStats, d.objs.Events, d.objs.Liveness} {
		if m != nil && m.IsPinned() {
			errs = append(errs, m.Unpin())
		}
	}
	errs = append(errs, d.objs.Close())
	os.Remove(filepath.Join(d.pinDir, "links"))
	os.Remove(d.pinDir)
	errs = append(errs, d.unlock())
	return errors.Join(errs...)
}

// Programs, for tests and benchmarks that run them with prog.Run, or attach
// beside them (tests/).
func (d *Datapath) XDP() *ebpf.Program          { return d.objs.XdpVrrp }
func (d *Datapath) FenceIngress() *ebpf.Program { return d.objs.TcFenceIngress }
func (d *Datapath) FenceEgress() *ebpf.Program  { return d.objs.TcFenceEgress }

// Typed map access.

func (d *Datapath) PutInstance(k InstanceKey, v Instance) error {
	return d.objs.Instances.Put(k, v)
}

func (d *Datapath) Instance(k InstanceKey) (Instance, error) {
	var v Instance
	return v, d.objs.Instances.Lookup(k, &v)
}

func (d *Datapath) DeleteInstance(k InstanceKey) error { return d.objs.Instances.Delete(k) }

// Peer returns the last advert heard for an instance, whole: the kernel holds
// the entry's lock while it rewrites it, and the lookup takes it too.
func (d *Datapath) Peer(k InstanceKey) (Peer, error) {
	var v Peer
	return v, d.objs.Peers.LookupWithFlags(k, &v, ebpf.LookupLock)
}

// DeletePeer forgets the last advert heard for an instance.
func (d *Datapath) DeletePeer(k InstanceKey) error { return d.objs.Peers.Delete(k) }

func (d *Datapath) PutVIP(k VIPKey, owner InstanceKey) error { return d.objs.Vips.Put(k, owner) }

func (d *Datapath) PutUnicastPeer(k UnicastKey) error { return d.objs.UnicastPeers.Put(k, uint8(1)) }

func (d *Datapath) DeleteUnicastPeer(k UnicastKey) error { return d.objs.UnicastPeers.Delete(k) }

// Counters returns the stats map summed over CPUs, indexed by vrrp.Reason, then
// the fence counters (CounterFencedIngress, CounterFencedEgress, CounterNoAccept).
func (d *Datapath) Counters() ([]uint64, error) {
	out := make([]uint64, CounterMax)
	for i := range out {
		var perCPU []uint64
		if err := d.objs.Stats.Lookup(uint32(i), &perCPU); err != nil {
			return nil, fmt.Errorf("read stats[%d]: %w", i, err)
		}
		for _, v := range perCPU {
			out[i] += v
		}
	}
	return out, nil
}

// Counter indexes beyond the reasons.
const (
	CounterFencedIngress = int(bpfXvrrpCounterXVRRP_COUNTER_FENCED_INGRESS)
	CounterFencedEgress  = int(bpfXvrrpCounterXVRRP_COUNTER_FENCED_EGRESS)
	CounterNoAccept      = int(bpfXvrrpCounterXVRRP_COUNTER_NO_ACCEPT)
	CounterMax           = int(bpfXvrrpCounterXVRRP_COUNTER_MAX)
)

// States, families and event kinds as the kernel knows them.
const (
	StateInit   = uint8(bpfXvrrpStateXVRRP_STATE_INIT)
	StateBackup = uint8(bpfXvrrpStateXVRRP_STATE_BACKUP)
	StateMaster = uint8(bpfXvrrpStateXVRRP_STATE_MASTER)
	StateFault  = uint8(bpfXvrrpStateXVRRP_STATE_FAULT)

	FamilyIPv4 = uint8(bpfXvrrpFamilyXVRRP_FAMILY_IPV4)
	FamilyIPv6 = uint8(bpfXvrrpFamilyXVRRP_FAMILY_IPV6)

	FlagUnicast  = uint32(bpfXvrrpFlagXVRRP_F_UNICAST)
	FlagNoAccept = uint32(bpfXvrrpFlagXVRRP_F_NO_ACCEPT)

	EventNewSource = uint32(bpfXvrrpEventKindXVRRP_EVENT_NEW_SOURCE)
	EventPriority  = uint32(bpfXvrrpEventKindXVRRP_EVENT_PRIORITY)
	EventResign    = uint32(bpfXvrrpEventKindXVRRP_EVENT_RESIGN)
	EventContest   = uint32(bpfXvrrpEventKindXVRRP_EVENT_CONTEST)
)

// instanceEntries returns every instance the kernel holds, in the generated
// types; Instances decodes them.
func (d *Datapath) instanceEntries() (map[InstanceKey]Instance, error) {
	out := map[InstanceKey]Instance{}
	var (
		k InstanceKey
		v Instance
	)
	it := d.objs.Instances.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	return out, it.Err()
}

// vipEntries returns every VIP the kernel fences, with its owner, in the
// generated types; VIPs decodes them.
func (d *Datapath) vipEntries() (map[VIPKey]InstanceKey, error) {
	out := map[VIPKey]InstanceKey{}
	var (
		k VIPKey
		v InstanceKey
	)
	it := d.objs.Vips.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	return out, it.Err()
}
