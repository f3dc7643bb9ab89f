package lab

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// ListenVRRP opens a raw IPv4 socket for protocol 112 in the host, joined to
// 224.0.0.18 on eth0, and calls fn with each packet (IP header included) until the
// lab closes. It sees what any host on the segment would hear.
func (h *Host) ListenVRRP(fn func(pkt []byte, at time.Time)) error {
	var fd int
	err := h.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 112)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			unix.Close(fd)
			return err
		}
		mreq := &unix.IPMreqn{Multiaddr: [4]byte{224, 0, 0, 18}, Ifindex: int32(ifi.Index)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
			unix.Close(fd)
			return fmt.Errorf("join 224.0.0.18: %w", err)
		}
		// Wake up now and then to notice the lab closing.
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		return fmt.Errorf("%s: listen for VRRP: %w", h.Name, err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	h.lab.onClose(func() { close(stop); <-done; unix.Close(fd) })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			fn(append([]byte(nil), buf[:n]...), time.Now())
		}
	}()
	return nil
}
