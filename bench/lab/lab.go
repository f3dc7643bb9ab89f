// Package lab builds throw-away test networks: hosts that are network namespaces,
// each with one veth into a bridge that lives in a namespace of its own, so nothing
// touches the root namespace's interfaces. End-to-end tests and `xvrrp demo` use it.
//
// Every namespace of a lab is named xvrrp-<pid>-<random>-<host>, unique per run.
// Close removes all of it; so do SIGINT and SIGTERM while a lab is open; and New
// removes what a run that died without cleaning (SIGKILL) left behind, recognised by
// a pid that no longer runs.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NamePrefix starts the name of every namespace a lab creates.
const NamePrefix = "xvrrp-"

const bridgeName = "br0"

// Subnets the lab numbers its hosts from. Hosts get .11, .12, … (::11, ::12, …),
// the client .200 (::200); VIPs are for the tests to choose, e.g. .1 and ::1.
var (
	Subnet4 = netip.MustParsePrefix("192.0.2.0/24")
	Subnet6 = netip.MustParsePrefix("2001:db8::/64")
	// Subnet4b numbers eth1 (Options.SecondLink): .11, .12, …
	Subnet4b = netip.MustParsePrefix("198.51.100.0/24")
)

// Options say what to build.
type Options struct {
	Hosts  int  // VRRP nodes, h1 … hN
	Client bool // one more host, "client", for probes
	// SecondLink gives every host a second interface, eth1, into the same
	// bridge, numbered from Subnet4b: for instances on two interfaces.
	SecondLink bool
}

// Lab is a bridge and the hosts plugged into it.
type Lab struct {
	ID     string // xvrrp-<pid>-<random>
	Hosts  []*Host
	Client *Host
	Dir    string // scratch directory, removed by Close

	switchNS string
	mu       sync.Mutex
	procs    []*Proc
	closers  []func()
	closed   bool

	closeOnce sync.Once
	closeErr  error
}

// onClose registers fn to run first thing in Close, for sockets and goroutines
// the lab's helpers started.
func (l *Lab) onClose(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, fn)
}

// Host is one network namespace with interface eth0 on the lab's bridge.
type Host struct {
	Name  string // h1, h2, …, client
	NS    string // the namespace's name, for `ip netns exec`
	Iface string // always eth0
	MAC   net.HardwareAddr
	IPv4  netip.Prefix
	IPv6  netip.Prefix
	// Eth1IPv4 is eth1's address with Options.SecondLink.
	Eth1IPv4 netip.Prefix

	lab   *Lab
	ports map[string]string // the bridge's end of each veth, in the switch namespace
	links map[string]linkSpec
}

// linkSpec is how addLink made one of a host's interfaces, to make it again.
type linkSpec struct {
	port  string
	mac   net.HardwareAddr
	addrs []netip.Prefix
}

// New builds a lab. On error nothing is left behind.
func New(ctx context.Context, opt Options) (_ *Lab, err error) {
	if opt.Hosts < 0 || opt.Hosts > 50 {
		return nil, fmt.Errorf("new lab: %d hosts, want 0 to 50", opt.Hosts)
	}
	SweepStale()

	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	l := &Lab{ID: fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))}
	l.switchNS = l.ID + "-sw"
	register(l)
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.Dir, err = os.MkdirTemp("", l.ID+"-"); err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}

	if err := createNS(l.switchNS, switchSysctls); err != nil {
		return nil, err
	}
	err = l.inNS(l.switchNS, func(h *netlink.Handle) error {
		snoop := false // VRRP multicast must reach every port, querier or not
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}, MulticastSnooping: &snoop}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge: %w", err)
		}
		return h.LinkSetUp(br)
	})
	if err != nil {
		return nil, err
	}

	for i := 1; i <= opt.Hosts; i++ {
		h, err := l.addHost(ctx, fmt.Sprintf("h%d", i), 10+i, opt.SecondLink)
		if err != nil {
			return nil, err
		}
		l.Hosts = append(l.Hosts, h)
	}
	if opt.Client {
		if l.Client, err = l.addHost(ctx, "client", 200, false); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Lab) addHost(ctx context.Context, name string, n int, second bool) (*Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := &Host{
		Name:  name,
		NS:    l.ID + "-" + name,
		Iface: "eth0",
		MAC:   net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, byte(n >> 8), byte(n)},
		IPv4:  netip.PrefixFrom(nthAddr(Subnet4.Addr(), n), Subnet4.Bits()),
		// ::11 rather than ::b, so the two families read alike.
		IPv6:  netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", n)), Subnet6.Bits()),
		lab:   l,
		ports: map[string]string{},
		links: map[string]linkSpec{},
	}
	if err := createNS(h.NS, hostSysctls); err != nil {
		return nil, err
	}
	if err := l.addLink(h, h.Iface, "p-"+name, h.MAC, h.IPv4, h.IPv6); err != nil {
		return nil, fmt.Errorf("set up host %s: %w", name, err)
	}
	if second {
		h.Eth1IPv4 = netip.PrefixFrom(nthAddr(Subnet4b.Addr(), n), Subnet4b.Bits())
		mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x11, byte(n >> 8), byte(n)}
		if err := l.addLink(h, "eth1", "q-"+name, mac, h.Eth1IPv4); err != nil {
			return nil, fmt.Errorf("set up host %s: %w", name, err)
		}
	}
	return h, nil
}

// addLink plugs a veth from the host's iface into the bridge, with addrs.
func (l *Lab) addLink(h *Host, iface, port string, mac net.HardwareAddr, addrs ...netip.Prefix) error {
	hostNS, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", h.NS, err)
	}
	defer hostNS.Close()

	err = l.inNS(l.switchNS, func(nh *netlink.Handle) error {
		br, err := nh.LinkByName(bridgeName)
		if err != nil {
			return err
		}
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
			PeerName:         iface,
			PeerHardwareAddr: mac,
			PeerNamespace:    netlink.NsFd(hostNS),
		}
		if err := nh.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s: %w", port, err)
		}
		return nh.LinkSetUp(veth)
	})
	if err != nil {
		return err
	}
	if err := l.passXDP(port); err != nil {
		return err
	}
	h.ports[iface] = port
	h.links[iface] = linkSpec{port: port, mac: mac, addrs: addrs}
	return l.inNS(h.NS, func(nh *netlink.Handle) error {
		lo, err := nh.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := nh.LinkSetUp(lo); err != nil {
			return err
		}
		eth, err := nh.LinkByName(iface)
		if err != nil {
			return err
		}
		for _, p := range addrs {
			// NODAD: the address is usable at once instead of tentative for a second.
			addr := &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}
			if err := nh.AddrAdd(eth, addr); err != nil {
				return fmt.Errorf("add %v: %w", p, err)
			}
		}
		return nh.LinkSetUp(eth)
	})
}

// Host returns the host with the given name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.all() {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func (l *Lab) all() []*Host {
	hs := slices.Clone(l.Hosts)
	if l.Client != nil {
		hs = append(hs, l.Client)
	}
	return hs
}

// Namespaces lists the names of the namespaces the lab made.
func (l *Lab) Namespaces() []string {
	names := []string{l.switchNS}
	for _, h := range l.all() {
		names = append(names, h.NS)
	}
	return names
}

// Close stops every process the lab started and removes its namespaces, and with
// them every interface, and its scratch directory. It may be called more than
// once, and from several goroutines: each returns once the lab is gone (an
// interrupt's handler and the interrupted code both close it; neither may exit
// the process while the other is half way).
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	l.mu.Lock()
	l.closed = true
	procs, closers := l.procs, l.closers
	l.mu.Unlock()
	unregister(l)

	var errs []error
	for _, p := range procs {
		p.kill()
	}
	for _, fn := range closers {
		fn()
	}
	// Deleting the namespaces also deletes the veths and the bridge inside them.
	for _, name := range l.Namespaces() {
		if err := deleteNS(name); err != nil {
			errs = append(errs, err)
		}
	}
	if l.Dir != "" {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cut takes the host's eth0 down on the bridge's side, as a pulled cable would:
// the host loses carrier and nobody hears it.
func (h *Host) Cut() error { return h.setPort(h.Iface, false) }

// Restore brings the host's eth0 back.
func (h *Host) Restore() error { return h.setPort(h.Iface, true) }

// CutLink and RestoreLink are Cut and Restore for another of the host's links.
func (h *Host) CutLink(iface string) error     { return h.setPort(iface, false) }
func (h *Host) RestoreLink(iface string) error { return h.setPort(iface, true) }

func (h *Host) setPort(iface string, up bool) error {
	name, ok := h.ports[iface]
	if !ok {
		return fmt.Errorf("%s has no link %s", h.Name, iface)
	}
	return h.lab.inNS(h.lab.switchNS, func(nh *netlink.Handle) error {
		port, err := nh.LinkByName(name)
		if err != nil {
			return err
		}
		if up {
			return nh.LinkSetUp(port)
		}
		return nh.LinkSetDown(port)
	})
}

// BlockVRRP drops VRRP (IPv4 protocol 112, IPv6 next header 112) to and from
// the host at the switch, as a firewall or a switch's IGMP snooping that lost
// the group would: the host and the others no longer hear each other's
// adverts, while everything else, the VIP's traffic and ARP included, still
// flows. UnblockVRRP lifts it. Rules in the switch's nftables bridge family,
// gone with the lab.
func (h *Host) BlockVRRP() error {
	port, ok := h.ports[h.Iface]
	if !ok {
		return fmt.Errorf("%s has no link %s", h.Name, h.Iface)
	}
	rules := fmt.Sprintf(`table bridge %[1]s {
	chain forward {
		type filter hook forward priority 0;
		iifname %[2]q ip protocol 112 drop
		oifname %[2]q ip protocol 112 drop
		iifname %[2]q ip6 nexthdr 112 drop
		oifname %[2]q ip6 nexthdr 112 drop
	}
}
`, h.vrrpTable(), port)
	return h.lab.nft([]byte(rules), "-f", "-")
}

// UnblockVRRP lets VRRP to and from the host through the switch again.
func (h *Host) UnblockVRRP() error { return h.lab.nft(nil, "delete", "table", "bridge", h.vrrpTable()) }

func (h *Host) vrrpTable() string { return "xvrrp_block_" + h.Name }

// nft runs nft in the switch's namespace.
func (l *Lab) nft(stdin []byte, args ...string) error {
	cmd := (&Host{}).command(context.Background(), append([]string{"ip", "netns", "exec", l.switchNS, "nft"}, args...))
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &out
	err := startOnSpawner(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("switch: nft %v: %w: %s", args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// SetLinkDown and SetLinkUp take the host's own interface down and up (`ip
// link set dev down` on the node), where Cut acts at the switch's port.
func (h *Host) SetLinkDown(iface string) error { return h.setOwnLink(iface, false) }
func (h *Host) SetLinkUp(iface string) error   { return h.setOwnLink(iface, true) }

func (h *Host) setOwnLink(iface string, up bool) error {
	return h.Netlink(func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(iface)
		if err != nil {
			return err
		}
		if up {
			return nh.LinkSetUp(l)
		}
		return nh.LinkSetDown(l)
	})
}

// DeleteLink deletes the host's interface, and with it the veth's other end
// in the switch: the node's own interface is gone, as when a VLAN or bond is
// torn down or a container runtime removes a veth.
func (h *Host) DeleteLink(iface string) error {
	return h.Netlink(func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(iface)
		if err != nil {
			return err
		}
		return nh.LinkDel(l)
	})
}

// RecreateLink makes a deleted interface again, with the same name, MAC and
// addresses and a new index, plugged into the bridge as before.
func (h *Host) RecreateLink(iface string) error {
	spec, ok := h.links[iface]
	if !ok {
		return fmt.Errorf("%s has no link %s", h.Name, iface)
	}
	return h.lab.addLink(h, iface, spec.port, spec.mac, spec.addrs...)
}

// Do runs fn on an OS thread that is in the host's network namespace. Sockets fn
// opens stay in that namespace after Do returns.
func (h *Host) Do(fn func() error) error {
	return doInNS(h.NS, fn)
}

// Netlink runs fn with a netlink handle in the host's namespace.
func (h *Host) Netlink(fn func(*netlink.Handle) error) error {
	return h.lab.inNS(h.NS, fn)
}

func (l *Lab) inNS(name string, fn func(*netlink.Handle) error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// doInNS runs fn on a locked OS thread switched into the named namespace. The
// thread is never handed back to the scheduler: the goroutine exits still locked,
// so the runtime throws the thread away instead of reusing it in the wrong namespace.
func doInNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// createNS creates a named namespace and sets sysctls in it before any interface
// exists, so interfaces created later inherit them from "default".
func createNS(name string, sysctls map[string]string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // see doInNS: this thread is discarded
		ns, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("create namespace %s: %w", name, err)
			return
		}
		ns.Close()
		for key, val := range sysctls {
			// /proc/sys/net belongs to the writing thread's namespace.
			path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
			if err := os.WriteFile(path, []byte(val), 0o644); err != nil {
				errc <- fmt.Errorf("namespace %s: set %s: %w", name, key, err)
				return
			}
		}
		errc <- nil
	}()
	return <-errc
}

var (
	// Hosts are usable as soon as New returns: no duplicate address detection
	// holding link-local addresses tentative for a second.
	hostSysctls = map[string]string{
		"net.ipv6.conf.default.accept_dad": "0",
		"net.ipv6.conf.all.accept_dad":     "0",
	}
	// The switch has no addresses of its own and sends nothing into captures.
	switchSysctls = map[string]string{
		"net.ipv6.conf.default.disable_ipv6": "1",
		"net.ipv6.conf.all.disable_ipv6":     "1",
	}
)

func deleteNS(name string) error {
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// SweepStale removes namespaces left by lab runs whose process is gone, as after a
// SIGKILL, which no handler can clean up after. It returns what it removed.
func SweepStale() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		killProcessesIn(e.Name())
		if deleteNS(e.Name()) == nil {
			removed = append(removed, e.Name())
		}
	}
	return append(removed, sweepPins()...)
}

// killProcessesIn kills every process whose network namespace is the named one,
// as `ip netns pids` finds them.
func killProcessesIn(name string) {
	var want unix.Stat_t
	if unix.Stat("/run/netns/"+name, &want) != nil {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+p.Name()+"/ns/net", &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

func ownerPID(ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, NamePrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// Labs open in this process, so that a signal can remove them.
var (
	openMu   sync.Mutex
	openLabs = map[*Lab]bool{}
	sigOnce  sync.Once
)

func register(l *Lab) {
	openMu.Lock()
	openLabs[l] = true
	openMu.Unlock()
	sigOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			sig := <-c
			n := CloseAll()
			fmt.Fprintf(os.Stderr, "lab: %v: removed %d lab(s)\n", sig, n)
			os.Exit(128 + int(sig.(syscall.Signal)))
		}()
	})
}

func unregister(l *Lab) {
	openMu.Lock()
	delete(openLabs, l)
	openMu.Unlock()
}

// CloseAll closes every lab open in this process and returns how many there were.
func CloseAll() int {
	openMu.Lock()
	labs := make([]*Lab, 0, len(openLabs))
	for l := range openLabs {
		labs = append(labs, l)
	}
	openMu.Unlock()
	for _, l := range labs {
		l.Close()
	}
	return len(labs)
}

func nthAddr(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	b[3] += byte(n)
	return netip.AddrFrom4(b)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// InSwitch runs a command in the switch's namespace (nft rules on the
// bridge, for tests that drop chosen frames between hosts).
func (l *Lab) InSwitch(ctx context.Context, name string, args ...string) ([]byte, error) {
	argv := append([]string{"netns", "exec", l.switchNS, name}, args...)
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in the switch: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}
