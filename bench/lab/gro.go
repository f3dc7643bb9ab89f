package lab

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// passXDP attaches a program that passes every frame to the bridge's end of
// a host's veth, in the switch's namespace. A veth drops what its peer's XDP
// program sends back with XDP_TX unless it runs XDP itself (NAPI on its
// receive side), where a NIC would simply send it: a host's XDP answering on
// its eth0 (fast_liveness) needs it. The program stays for the lab's life.
func (l *Lab) passXDP(port string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		return fmt.Errorf("XDP on %s: %w", port, err)
	}
	var lnk link.Link
	err = doInNS(l.switchNS, func() error {
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		lnk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		prog.Close()
		return fmt.Errorf("XDP on %s: %w", port, err)
	}
	l.onClose(func() {
		lnk.Close()
		prog.Close()
	})
	return nil
}
