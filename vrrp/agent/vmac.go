package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// use_vmac, as keepalived 2.2.7 does it (seen by running it in a namespace):
//
//   - a macvlan in private mode on the instance's interface, named vrrp.VRID
//     (vmac_prefix.VRID, or as given), with the virtual router MAC
//     00:00:5e:00:01:VRID (IPv6 00:00:5e:00:02:VRID), created at start, up in
//     every state, removed at stop;
//   - the VIPs (and the excluded addresses of the instance's family with no
//     dev of their own) live on it, so a client's ARP or neighbour entry for a
//     VIP names the virtual MAC whichever router is master;
//   - adverts leave from it, so their source MAC is the virtual one, unless
//     vmac_xmit_base, when they leave from the interface; gratuitous ARPs and
//     NAs always leave from it;
//   - sysctls: arp_ignore=1 and arp_filter=1 on the interface, so that it does
//     not answer ARP for the VIPs with its own MAC; arp_ignore=1,
//     accept_local=1 and promote_secondaries=1 on the VMAC; an IPv4
//     instance's VMAC has IPv6 off and rp_filter=0 (with all.rp_filter set,
//     see rpFilter), an IPv6 instance's carries the interface's link-local
//     address, which its adverts come from.
//
// The kernel side stays on the instance's interface; the VMAC's egress fence
// also keeps the kernel's own IGMP and MLD reports from carrying the virtual
// MAC, and drops its router solicitations (vmac_egress in bpf/xvrrp.c), as
// keepalived does with nftables: a backup's VMAC that sent them would draw
// the master's traffic to itself. A macvlan receives
// through its parent's rx handler, which runs after the parent's XDP and TCX
// ingress: every advert and every packet to a VIP passes the interface's XDP
// and fence first. The macvlan's transmit goes out through the parent's TCX
// egress, so the interface's egress fence sees what leaves the VMAC too (the
// VMAC carries a fence of its own as well, like every interface: fenceOthers).
// This is also why the instance's own MAC in the kernel stays the
// interface's: a peer's VMAC has the same MAC as ours, and its adverts are
// told from our own by their source address.

// vmacIf is an instance's VMAC.
type vmacIf struct {
	link netlink.Link
	ifi  *net.Interface
}

// ensureVMAC makes the instance's VMAC on base, or takes the one an earlier
// run left (a restart within the lease keeps its VIPs on it), and sets it up
// as keepalived does.
func (a *Agent) ensureVMAC(owner, name, macText string, family config.Family, base netlink.Link) (*vmacIf, error) {
	mac, err := net.ParseMAC(macText)
	if err != nil {
		return nil, fmt.Errorf("use_vmac: %w", err)
	}
	battrs := base.Attrs()
	lnk, err := a.nl.LinkByName(name)
	switch {
	case err == nil:
		mv, ok := lnk.(*netlink.Macvlan)
		if !ok || mv.Attrs().ParentIndex != battrs.Index || !slices.Equal(mv.Attrs().HardwareAddr, mac) {
			return nil, fmt.Errorf("use_vmac: interface %s exists and is not a macvlan on %s with MAC %v", name, battrs.Name, mac)
		}
	case errors.As(err, new(netlink.LinkNotFoundError)):
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: battrs.Index, HardwareAddr: mac},
			Mode:      netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := a.nl.LinkAdd(mv); err != nil {
			return nil, fmt.Errorf("use_vmac: create %s on %s: %w", name, battrs.Name, err)
		}
		if lnk, err = a.nl.LinkByName(name); err != nil {
			return nil, fmt.Errorf("use_vmac: %s: %w", name, err)
		}
		// No address of its own: keepalived's addrgenmode none.
		if err := a.nl.LinkSetIP6AddrGenMode(lnk, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
			a.log.Warn(fmt.Sprintf("(%s) %s: addrgenmode none: %v", owner, name, err))
		}
		a.log.Info(fmt.Sprintf("(%s): Success creating VMAC interface %s", owner, name))
	default:
		return nil, fmt.Errorf("use_vmac: %s: %w", name, err)
	}
	set := func(path, val string) {
		if err := a.setSysctl(path, val); err != nil {
			a.log.Warn(fmt.Sprintf("(%s) use_vmac: %v", owner, err))
		}
	}
	set("ipv4/conf/"+battrs.Name+"/arp_ignore", "1")
	set("ipv4/conf/"+battrs.Name+"/arp_filter", "1")
	for k, v := range map[string]string{"arp_ignore": "1", "accept_local": "1", "promote_secondaries": "1"} {
		set("ipv4/conf/"+name+"/"+k, v)
	}
	if family != config.IPv6 {
		set("ipv6/conf/"+name+"/disable_ipv6", "1")
		a.rpFilter(owner)
		// Strict reverse-path filtering would drop a client's packets that
		// reach the VIP on the VMAC while the route back is the interface's.
		set("ipv4/conf/"+name+"/rp_filter", "0")
	}
	// The fence, before it is up: the kernel's first IGMP or MLD report
	// from it must not carry the virtual MAC (vmac_egress in bpf/xvrrp.c).
	idx := lnk.Attrs().Index
	if err := a.dp.PutVMAC(idx, battrs.HardwareAddr); err != nil {
		return nil, fmt.Errorf("use_vmac: %s: %w", name, err)
	}
	if !a.fenceOnly[idx] {
		if err := a.dp.AttachFence(idx); err != nil {
			return nil, fmt.Errorf("use_vmac: fence %s: %w", name, err)
		}
		a.fenceOnly[idx] = true
	}
	if err := a.nl.LinkSetUp(lnk); err != nil {
		return nil, fmt.Errorf("use_vmac: up %s: %w", name, err)
	}
	if family == config.IPv6 {
		if err := a.copyLinkLocal(base, lnk); err != nil {
			return nil, fmt.Errorf("use_vmac: %s: %w", name, err)
		}
	}
	ifi, err := net.InterfaceByIndex(lnk.Attrs().Index)
	if err != nil {
		return nil, fmt.Errorf("use_vmac: %s: %w", name, err)
	}
	return &vmacIf{link: lnk, ifi: ifi}, nil
}

// rpFilter does what keepalived does with all.rp_filter set, since the kernel
// takes the greater of it and an interface's: every interface (loopback aside)
// and default get the greater of their own and all's, and all becomes 0, so
// that the VMAC's own 0 counts. Put back at stop.
func (a *Agent) rpFilter(name string) {
	all, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter")
	if err != nil || strings.TrimSpace(string(all)) == "0" {
		return
	}
	allV := strings.TrimSpace(string(all))
	raise := func(path string) {
		cur, err := os.ReadFile("/proc/sys/net/" + path)
		if err != nil {
			return
		}
		if strings.TrimSpace(string(cur)) < allV { // 0, 1, 2: one digit
			if err := a.setSysctl(path, allV); err != nil {
				a.log.Warn(fmt.Sprintf("(%s) use_vmac: %v", name, err))
			}
		}
	}
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			raise("ipv4/conf/" + ifi.Name + "/rp_filter")
		}
	}
	raise("ipv4/conf/default/rp_filter")
	if err := a.setSysctl("ipv4/conf/all/rp_filter", "0"); err != nil {
		a.log.Warn(fmt.Sprintf("(%s) use_vmac: %v", name, err))
	}
}

// copyLinkLocal puts the interface's link-local address on the VMAC, without
// duplicate address detection, as keepalived: IPv6 adverts come from it.
func (a *Agent) copyLinkLocal(base, vm netlink.Link) error {
	addrs, err := a.nl.AddrList(base, netlink.FAMILY_V6)
	if err != nil {
		return err
	}
	for _, ad := range addrs {
		ip, _ := netip.AddrFromSlice(ad.IP)
		if !ip.IsLinkLocalUnicast() {
			continue
		}
		ll := &netlink.Addr{IPNet: ad.IPNet, Flags: unix.IFA_F_NODAD, Scope: unix.RT_SCOPE_LINK}
		if err := a.nl.AddrReplace(vm, ll); err != nil {
			return fmt.Errorf("add link-local %v: %w", ad.IPNet, err)
		}
		return nil
	}
	return fmt.Errorf("%s has no IPv6 link-local address to send adverts from", base.Attrs().Name)
}

// ensureVMACs makes the instance's VMACs: use_vmac's on its interface base,
// and use_vmac_addr's on the interfaces of its other addresses.
func (a *Agent) ensureVMACs(inst *instance, base netlink.Link) error {
	in := inst.cfg
	inst.vmac, inst.addrVMACs = nil, nil
	if in.UseVMAC {
		vm, err := a.ensureVMAC(in.Name, in.VMACName, in.VMACAddr, in.Family, base)
		if err != nil {
			return err
		}
		inst.vmac = vm
	}
	for _, av := range in.AddrVMACs {
		parent, err := a.nl.LinkByName(av.Parent)
		if err != nil {
			return fmt.Errorf("use_vmac_addr: %s: %w", av.Parent, err)
		}
		vm, err := a.ensureVMAC(in.Name, av.Name, av.MAC, av.Family, parent)
		if err != nil {
			return err
		}
		if inst.addrVMACs == nil {
			inst.addrVMACs = map[string]*vmacIf{}
		}
		inst.addrVMACs[av.Name] = vm
	}
	return nil
}

// removeVMAC deletes the instance's VMACs, with whatever addresses are left on
// them, as keepalived does at stop and when the instance goes from the
// configuration.
func (a *Agent) removeVMAC(in *instance) {
	all := []*vmacIf{in.vmac}
	for _, vm := range in.addrVMACs {
		all = append(all, vm)
	}
	for _, vm := range all {
		if vm == nil {
			continue
		}
		name := vm.link.Attrs().Name
		err := a.nl.LinkDel(vm.link)
		if err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) && !errors.Is(err, unix.ENODEV) {
			a.log.Warn(fmt.Sprintf("(%s) remove VMAC interface %s: %v", in.cfg.Name, name, err))
		} else {
			a.log.Info(fmt.Sprintf("(%s) Success removing VMAC interface %s", in.cfg.Name, name))
		}
		a.forgetVMAC(in, vm.link.Attrs().Index, name)
	}
	in.vmac, in.addrVMACs = nil, nil
}

// forgetVMAC lets go of what a VMAC that is gone held: the kernel's entry,
// its socket and its announcer. The fence's pins go when the link's deletion
// is heard (fenceLink), or with the datapath at stop. Adverts queued on the
// socket go with it (sendOutcome).
func (a *Agent) forgetVMAC(in *instance, idx int, name string) {
	if err := a.dp.ForgetVMAC(idx); err != nil {
		a.log.Warn(fmt.Sprintf("(%s) forget VMAC %s in the kernel: %v", in.cfg.Name, name, err))
	}
	for k, s := range a.socks {
		if k.ifindex == idx {
			s.close()
			delete(a.socks, k)
		}
	}
	a.addrs.release(idx)
}

// hasVMAC reports whether index is one of the instance's VMACs.
func (in *instance) hasVMAC(index int) bool {
	return slices.Contains(in.vmacIndexes(), index)
}

func (in *instance) vmacIndexes() []int {
	var idx []int
	if in.vmac != nil {
		idx = append(idx, in.vmac.link.Attrs().Index)
	}
	for _, vm := range in.addrVMACs {
		idx = append(idx, vm.link.Attrs().Index)
	}
	return idx
}

// vmacGone handles the deletion of one of the instance's VMACs by something
// else — an operator, a network manager tidying up interfaces it does not
// know — while its interface stays: keepalived 2.2.7 makes it again, and so
// does xvrrp, at once (remakeVMACs). A VMAC that went with its interface is
// left to the interface's return (rebind). It reports whether the instance's
// state may have changed.
func (a *Agent) vmacGone(in *instance, l linkState, now time.Duration) bool {
	if in.gone {
		return false
	}
	if _, err := a.nl.LinkByIndex(in.ifi.Index); err != nil {
		return false // the interface went too: it takes its VMACs along
	}
	a.log.Warn(fmt.Sprintf("(%s) VMAC interface %s was deleted by something else: re-creating it", in.cfg.Name, l.name))
	return a.remakeVMACs(in, now)
}

// vmacMissing reports whether a VMAC of the instance is gone while its
// interface is there: an advert that could not leave by it says so before
// the link update does.
func (a *Agent) vmacMissing(in *instance) (string, bool) {
	if in.gone || len(in.vmacIndexes()) == 0 {
		return "", false
	}
	if _, err := a.nl.LinkByIndex(in.ifi.Index); err != nil {
		return "", false
	}
	for _, vm := range append([]*vmacIf{in.vmac}, slices.Collect(maps.Values(in.addrVMACs))...) {
		if vm == nil {
			continue
		}
		if _, err := a.nl.LinkByIndex(vm.link.Attrs().Index); errors.As(err, new(netlink.LinkNotFoundError)) {
			return vm.link.Attrs().Name, true
		}
	}
	return "", false
}

// remakeVMACs makes the instance's VMACs again, with their sysctls and fence,
// moves its sockets and addresses to them, and, on a master, puts back the
// addresses that went with the old ones and announces them, as for a VIP
// removed behind its back (addrRemoved): the instance stays in its state.
// One that cannot be made leaves the instance in FAULT, retried as rebind is;
// then it reports true: the state may have changed.
func (a *Agent) remakeVMACs(in *instance, now time.Duration) bool {
	gone := in.vmacIndexes()
	if err := a.bind(in); err != nil {
		a.log.Error(fmt.Sprintf("(%s) re-create VMAC interface: %v", in.cfg.Name, err))
		in.rebindErr, in.rebindAt, in.up = err.Error(), now+time.Second, false
		return true
	}
	kept := in.vmacIndexes()
	for _, idx := range gone {
		if !slices.Contains(kept, idx) {
			a.forgetVMAC(in, idx, fmt.Sprintf("index %d", idx))
		}
	}
	in.restored++
	for _, v := range in.vips {
		if err := a.addrs.prepare(v); err != nil {
			a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		}
	}
	if in.isMaster() {
		a.addrRemoved(addrGone{resync: true})
	}
	return false
}

// setSysctl writes /proc/sys/net/PATH, keeping the value found the first time,
// which restoreSysctls puts back at stop.
func (a *Agent) setSysctl(path, val string) error {
	full := "/proc/sys/net/" + path
	was, err := os.ReadFile(full)
	if err == nil {
		err = os.WriteFile(full, []byte(val+"\n"), 0)
	}
	if err != nil {
		return err
	}
	if a.sysctlWas == nil {
		a.sysctlWas = map[string][]byte{}
	}
	if _, ok := a.sysctlWas[full]; !ok {
		a.sysctlWas[full] = was
		a.sysctlOrder = append(a.sysctlOrder, full)
		a.saveSysctls()
	}
	return nil
}

// sysctlRecord is SysctlFile's content: each path and the value found before
// the first write, in the order of the writes.
type sysctlRecord struct {
	Path string `json:"path"`
	Was  string `json:"was"`
}

// saveSysctls writes SysctlFile, through a new file renamed over the old, so
// that a daemon killed meanwhile leaves the old record or the new, whole.
func (a *Agent) saveSysctls() {
	if a.opt.SysctlFile == "" {
		return
	}
	recs := make([]sysctlRecord, 0, len(a.sysctlOrder))
	for _, p := range a.sysctlOrder {
		recs = append(recs, sysctlRecord{Path: p, Was: string(a.sysctlWas[p])})
	}
	b, err := json.Marshal(recs)
	if err == nil {
		tmp := a.opt.SysctlFile + ".new"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, a.opt.SysctlFile)
		}
	}
	if err != nil {
		a.log.Warn("record the sysctls to put back", "error", err)
	}
}

// loadSysctls takes the record an earlier run left (one stopped with
// --keep-datapath, or killed): the values it found are the ones to put back,
// not what this run finds, which that run set.
func (a *Agent) loadSysctls() {
	if a.opt.SysctlFile == "" {
		return
	}
	b, err := os.ReadFile(a.opt.SysctlFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var recs []sysctlRecord
	if err == nil {
		err = json.Unmarshal(b, &recs)
	}
	if err != nil {
		a.log.Warn("read the sysctls an earlier run set: they will not be put back", "file", a.opt.SysctlFile, "error", err)
		return
	}
	a.sysctlWas = map[string][]byte{}
	for _, r := range recs {
		if _, ok := a.sysctlWas[r.Path]; !ok && strings.HasPrefix(r.Path, "/proc/sys/net/") {
			a.sysctlWas[r.Path] = []byte(r.Was)
			a.sysctlOrder = append(a.sysctlOrder, r.Path)
		}
	}
	a.log.Info("putting back at stop the sysctls an earlier run found", "count", len(a.sysctlOrder))
}

// vipLink is where an address of the instance lives when it has no dev of its
// own, or a VMAC: its use_vmac_addr VMAC, its VMAC (its family, no other dev),
// or its interface.
func (in *instance) vipLink(base netlink.Link, v config.VIP) netlink.Link {
	if vm := in.addrVMACs[v.VMAC]; v.VMAC != "" && vm != nil {
		return vm.link
	}
	if in.vmac == nil || (v.Dev != "" && v.Dev != in.cfg.Interface) {
		return base
	}
	if (in.cfg.Family == config.IPv6) != v.Prefix.Addr().Is6() {
		return base
	}
	return in.vmac.link
}
