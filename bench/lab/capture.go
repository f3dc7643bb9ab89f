package lab

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Capture is a tcpdump running on a host's interface, writing a pcap file.
type Capture struct {
	Path string
	proc *Proc
}

// Capture starts tcpdump on the host's eth0 with a capture filter (tcpdump's
// syntax, e.g. "vrrp") and returns once tcpdump is listening.
func (h *Host) Capture(filter string) (*Capture, error) {
	f, err := os.CreateTemp(h.lab.Dir, h.Name+"-*.pcap")
	if err != nil {
		return nil, err
	}
	f.Close()
	// --immediate-mode and -U hand each packet to the file as it comes; without them
	// tcpdump holds packets in its ring for up to a second and loses them on SIGINT.
	// -Z root: tcpdump would drop to its own user and could not write into the
	// lab's private directory.
	args := []string{"-i", h.Iface, "-nn", "--immediate-mode", "-U", "-s", "0", "-Z", "root", "-w", f.Name()}
	if filter != "" {
		args = append(args, strings.Fields(filter)...)
	}
	p, err := h.Start("tcpdump", args...)
	if err != nil {
		return nil, err
	}
	deadline := time.After(10 * time.Second)
	for !strings.Contains(p.Output(), "listening on") {
		select {
		case <-p.Done():
			return nil, fmt.Errorf("%s: tcpdump exited: %s", h.Name, p.Output())
		case <-deadline:
			p.kill()
			return nil, fmt.Errorf("%s: tcpdump did not start listening: %s", h.Name, p.Output())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &Capture{Path: filepath.Clean(f.Name()), proc: p}, nil
}

// Stop ends the capture and returns the packets it saw.
func (c *Capture) Stop() ([]Frame, error) {
	c.proc.Signal(syscall.SIGINT)
	select {
	case <-c.proc.Done():
	case <-time.After(5 * time.Second):
		c.proc.kill()
	}
	return ReadPcapFile(c.Path)
}

// ReadPcapFile reads the pcap file at path (see ReadPcap).
func ReadPcapFile(path string) ([]Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadPcap(f)
}

// Frame is one captured link-layer frame.
type Frame struct {
	Time time.Time
	Data []byte
}

// LinkTypeEthernet is the only pcap link type the lab writes.
const LinkTypeEthernet = 1

// ReadPcap reads a classic pcap file (microsecond or nanosecond, either byte order)
// of Ethernet frames.
func ReadPcap(r io.Reader) ([]Frame, error) {
	br := bufio.NewReader(r)
	var hdr [24]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	var (
		order binary.ByteOrder
		nanos bool
	)
	switch binary.LittleEndian.Uint32(hdr[:4]) {
	case 0xa1b2c3d4:
		order = binary.LittleEndian
	case 0xa1b23c4d:
		order, nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		order = binary.BigEndian
	case 0x4d3cb2a1:
		order, nanos = binary.BigEndian, true
	default:
		return nil, errors.New("read pcap: not a pcap file")
	}
	if lt := order.Uint32(hdr[20:24]) & 0x0fffffff; lt != LinkTypeEthernet {
		return nil, fmt.Errorf("read pcap: link type %d, want Ethernet", lt)
	}
	var frames []Frame
	for {
		var rec [16]byte
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			// EOF, or a partial record from a tcpdump killed mid-write: keep what is whole.
			return frames, nil
		}
		sec, frac := int64(order.Uint32(rec[0:4])), int64(order.Uint32(rec[4:8]))
		if !nanos {
			frac *= 1000
		}
		n := order.Uint32(rec[8:12])
		if n > 1<<18 {
			return frames, fmt.Errorf("read pcap: record of %d bytes", n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			return frames, nil
		}
		frames = append(frames, Frame{Time: time.Unix(sec, frac), Data: data})
	}
}

// WritePcap writes frames as a classic microsecond pcap file of Ethernet frames,
// the format tcpdump -r reads.
func WritePcap(w io.Writer, frames []Frame) error {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 262144)
	binary.LittleEndian.PutUint32(hdr[20:], LinkTypeEthernet)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	for _, f := range frames {
		rec := make([]byte, 16, 16+len(f.Data))
		binary.LittleEndian.PutUint32(rec[0:], uint32(f.Time.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(f.Time.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f.Data)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f.Data)))
		if _, err := w.Write(append(rec, f.Data...)); err != nil {
			return err
		}
	}
	return nil
}
