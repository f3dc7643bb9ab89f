package main

import (
	"fmt"
	"runtime/debug"

	"github.com/xvrrp/xvrrp/loader"
)

// commit is set by the Makefile's build (-ldflags -X main.commit=…), for
// builds where Go's own VCS stamp is off.
var commit string

// version is what `xvrrp --version` prints: the module version, the commit it
// was built from (with "+dirty" for uncommitted changes) and the hash of the
// BPF object it loads.
func version() string {
	mod, rev := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			mod = bi.Main.Version
		}
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty {
			rev += "+dirty"
		}
	}
	if commit != "" {
		rev = commit
	}
	return fmt.Sprintf("%s commit %s bpf %s", mod, rev, loader.ObjectHash()[:16])
}
