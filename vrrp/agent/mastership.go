package agent

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp"
)

// What a master holds besides the VIPs its adverts carry: the addresses of
// virtual_ipaddress_excluded. They come and go with mastership like the VIPs,
// are fenced like them, and are announced like them, but never advertised.

// bindExcluded resolves the instance's excluded VIPs on the host, as bind does
// its VIPs.
func (a *Agent) bindExcluded(inst *instance, lnk netlink.Link) error {
	var ex []vip
	for _, v := range inst.cfg.ExcludedVIPs {
		vv, err := a.vipOf(inst.cfg, v, lnk)
		if err != nil {
			return fmt.Errorf("excluded %w", err)
		}
		ex = append(ex, vv)
	}
	inst.excluded = ex
	return nil
}

// held is every address the instance holds while master: its VIPs, then its
// excluded VIPs.
func (in *instance) held() []vip {
	if len(in.excluded) == 0 {
		return in.vips
	}
	return append(append(make([]vip, 0, len(in.vips)+len(in.excluded)), in.vips...), in.excluded...)
}

// isMaster says whether the instance holds its addresses now.
func (in *instance) isMaster() bool { return in.m != nil && in.m.State() == vrrp.Master }
