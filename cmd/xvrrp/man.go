package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

//go:generate sh -c "go run . man > ../../docs/xvrrp.8"

// manCommand prints xvrrp(8), made from the command definitions: `go generate`
// writes it to docs/xvrrp.8, which is committed and installed.
var manCommand = &cli.Command{
	Name:   "man",
	Usage:  "print the xvrrp(8) manual page (roff)",
	Hidden: true,
	Action: func(c *cli.Context) error {
		app := *c.App
		app.Version = "" // the page must not change with every commit
		app.Description = manDescription
		page, err := app.ToMan()
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(c.App.Writer, page)
		return err
	},
}

const manDescription = `xvrrp runs the VRRP side of a keepalived.conf (VRRPv2 and v3, IPv4 and IPv6):
a virtual IP that moves to a backup within milliseconds when the master fails. An
XDP program validates, counts and time-stamps adverts in the kernel; a TC program
fences the VIP on every node that is not master with a lease the daemon renews:
a crashed or frozen master answers until its successor's first advert reaches its
kernel, and stops then, or by itself when the lease ends. Maps are pinned under
--pin-dir; bpftool map dump pinned shows them with named fields.

use_vmac: the instance's VIPs live on a VMAC, a private macvlan on its interface
named vmac_prefix.VRID (vrrp.VRID by default) or as given, with the MAC
00:00:5e:00:01:VRID (IPv6 00:00:5e:00:02:VRID), made at start and removed at stop,
as keepalived does; adverts leave from it unless vmac_xmit_base, gratuitous ARPs
always; use_vmac_addr gives the addresses on other interfaces, or of the other
family, VMACs of their own. A VMAC sends no IGMP/MLD report with the virtual MAC
and no router solicitation (the egress fence). xvrrp check prints what each
instance's VMAC settings will do.

Extensions: xvrrp_check (built-in TCP and HTTP checks) and, in a vrrp_instance,
a fast_liveness block (interval, multiplier): a backup probes its master every
interval (IPv4 UDP port 7112, the master's MAC and address) and takes over once
multiplier probes in a row go unanswered, well below Master_Down_Interval; the
master's XDP program answers the probes while its lease runs and its daemon renews
it, never its daemon.
A master or backup without it (keepalived included) runs plain VRRP. keepalived
refuses both blocks.

Signals: SIGTERM and SIGINT stop the daemon (masters resign with priority 0, the
VIPs and the datapath are removed unless --keep-datapath). SIGHUP reloads the
configuration: unchanged instances keep their state, an invalid file changes
nothing.

Files: /etc/keepalived/keepalived.conf, the configuration; /run/xvrrp/xvrrp.pid,
the pid file and lock of the state directory; /sys/fs/bpf/xvrrp, the pin directory.`
