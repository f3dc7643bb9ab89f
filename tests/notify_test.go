package tests

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// notifyConfig is a sync group G of VI_1 and VI_2. With dir, the node notifies
// into dir: each script appends its arguments to notify.log, the FIFO's reader
// appends its lines to fifo.log, and VI_1 tracks two files there: prio (weight
// 10) and fault (weight 0: non-zero is a FAULT).
func notifyConfig(prio int, dir string) string {
	global, group, inst := "", "", ""
	if dir != "" {
		rec := filepath.Join(dir, "rec.sh")
		global = fmt.Sprintf(`    notify_fifo %s/fifo
    notify_fifo_script %s/fifo-reader.sh`, dir, dir)
		group = fmt.Sprintf(`    notify "%s group"`, rec)
		inst = fmt.Sprintf(`    notify_master "%[1]s master-slow"
    notify_backup "%[1]s backup"
    notify_fault "%[1]s fault"
    notify_stop "%[1]s stop"
    notify "%[1]s any"
    notify_master_rx_lower_pri "%[1]s rx-lower-pri"
    notify_priority_changes
    track_file {
        prio weight 10
        fault weight 0
    }`, rec)
		global += fmt.Sprintf(`
}
vrrp_track_file prio {
    file %[1]s/prio
}
vrrp_track_file fault {
    file %[1]s/fault
    init_file 0 overwrite`, dir)
	}
	return fmt.Sprintf(`global_defs {
    vrrp_garp_master_delay 0
%s
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
%s
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %[3]d
    version 3
    advert_int 0.05
%[4]s
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %[3]d
    version 3
    advert_int 0.05
    virtual_ipaddress {
        192.0.2.2/24
    }
}
`, global, group, prio, inst)
}

// Notify scripts, the notify FIFO and track_file on h2, a backup that takes over,
// hears a lower priority, goes to FAULT and stops. Every script gets keepalived's
// arguments (its own, then INSTANCE name state priority, or GROUP name state 0),
// in the order of the transitions; the FIFO gets keepalived's lines. The
// notify_master script takes five seconds: the FAULT that follows it and its FIFO
// line come without waiting for it, and the scripts queued behind it still run,
// in order, before the daemon exits.
func TestNotify(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	dir := l.Dir
	notifyLog, fifoLog := filepath.Join(dir, "notify.log"), filepath.Join(dir, "fifo.log")
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("rec.sh", fmt.Sprintf(`#!/bin/sh
if [ "$1" = master-slow ]; then
    echo "master-slow start" >> %[1]s
    sleep 5
    echo "master-slow end" >> %[1]s
else
    echo "$*" >> %[1]s
fi
`, notifyLog), 0o755)
	write("fifo-reader.sh", fmt.Sprintf("#!/bin/sh\nwhile read -r line; do echo \"$line\" >> %s; done < \"$1\"\n", fifoLog), 0o755)
	write("prio", "0\n", 0o644)
	write("fault", "1\n", 0o644) // init_file 0 overwrite makes it 0
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	waitFile := func(path, s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(read(path), s) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never got %q; it has:\n%s", filepath.Base(path), s, read(path))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	x1, err := h1.StartXvrrp(xvrrpBin, notifyConfig(100, ""))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, notifyConfig(50, dir))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
	waitFile(fifoLog, `GROUP "G" BACKUP 0`)

	// track_file: 2 × weight 10 raises the priority, which the FIFO reports.
	write("prio", "2\n", 0o644)
	waitLog(t, x2, "(VI_1) Changing effective priority from 50 to 70")
	waitFile(fifoLog, `INSTANCE "VI_1" BACKUP_PRIORITY 70`)

	// The master dies; h2 takes over.
	x1.Signal(syscall.SIGKILL)
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	waitFile(notifyLog, "master-slow start")

	// A lower priority heard by the master: a forged advert from the client.
	forge := vrrp.Advert{Version: 3, VRID: 51, Priority: 10, Interval: 50 * time.Millisecond,
		Addrs: []netip.Addr{vip4}}
	pkt, err := forge.AppendPacket(nil, l.Client.IPv4.Addr(), vrrp.Group4, 255)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Client.WithRawIPv4(func(send func([]byte, netip.Addr) error) error { return send(pkt, vrrp.Group4) })
	if err != nil {
		t.Fatal(err)
	}
	waitFile(fifoLog, `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 70`)

	// A FAULT while notify_master still runs: not held up by it.
	write("fault", "1\n", 0o644)
	waitLog(t, x2, "(VI_1) Entering FAULT STATE")
	waitFile(fifoLog, `GROUP "G" FAULT 0`)
	if hasVIP(t, h2, vip4) {
		t.Error("h2 kept the VIP in FAULT")
	}
	if strings.Contains(read(notifyLog), "master-slow end") {
		t.Fatalf("the FAULT waited for the slow notify_master script:\n%s", read(notifyLog))
	}

	// A graceful stop runs what is queued, then notify_stop.
	if err := x2.Stop(15 * time.Second); err != nil {
		t.Logf("stop: %v", err)
	}
	want := []string{
		"backup",
		"any INSTANCE VI_1 BACKUP 50",
		"group GROUP G BACKUP 0",
		"master-slow start",
		"master-slow end",
		"any INSTANCE VI_1 MASTER 70",
		"group GROUP G MASTER 0",
		"rx-lower-pri",
		"fault",
		"any INSTANCE VI_1 FAULT 70",
		"group GROUP G FAULT 0",
		"stop",
		"any INSTANCE VI_1 STOP 70",
		"group GROUP G STOP 0",
	}
	if got := strings.Split(strings.TrimSpace(read(notifyLog)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notify scripts ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantFifo := []string{
		`INSTANCE "VI_1" BACKUP 50`,
		`GROUP "G" BACKUP 0`,
		`INSTANCE "VI_1" BACKUP_PRIORITY 70`,
		`INSTANCE "VI_1" MASTER 70`,
		`GROUP "G" MASTER 0`,
		`INSTANCE "VI_1" MASTER_RX_LOWER_PRI 70`,
		`INSTANCE "VI_1" FAULT 70`,
		`GROUP "G" FAULT 0`,
		`INSTANCE "VI_1" STOP 70`,
		`GROUP "G" STOP 0`,
	}
	// VI_2 has lines of its own; VI_1's and the group's come in this order.
	var gotFifo []string
	for _, line := range strings.Split(strings.TrimSpace(read(fifoLog)), "\n") {
		if !strings.Contains(line, `"VI_2"`) {
			gotFifo = append(gotFifo, line)
		}
	}
	if strings.Join(gotFifo, "\n") != strings.Join(wantFifo, "\n") {
		t.Errorf("FIFO lines\n%s\nwant\n%s", strings.Join(gotFifo, "\n"), strings.Join(wantFifo, "\n"))
	}
	if t.Failed() {
		t.Logf("h2:\n%s", x2.Output())
	}
}
