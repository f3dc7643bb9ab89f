package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// FuzzLoad reads a tree of three files — etc/k.conf, which may include
// etc/a.conf and etc/d/b.conf (by name, glob, {a,b} or absolute path), which
// may include each other or themselves — with $NAME definitions made in one
// file and used in another, and @id / @^id lines for the configuration id the
// input gives. Whatever the files, Load ends (within the reader's bounds) with
// a Config and errors that each name a file of the tree and a line.
func FuzzLoad(f *testing.F) {
	for _, seed := range [][4]string{
		{"include a.conf\ninclude d/*.conf\n", "$IF=eth0\nglobal_defs {\n}\n", "vrrp_instance VI_1 {\ninterface $IF\nvirtual_router_id 1\nvirtual_ipaddress {\n192.0.2.1\n}\n}\n", "xvrrp"},
		{"include {a,d/b}.conf\n@xvrrp include k.conf\n", "include /etc/d/b.conf\n", "include ../a.conf\n", "xvrrp"},
		{"$A=$B $B\n$B=$A $A\ninclude a.conf\nx $A\n", "$V=192.0.2.7 \\\n192.0.2.8\n", "@^h1 $V\n@h1 include ../k.conf\n", "h1"},
		{"include a.conf\ninclude a.conf\n", "include ../etc/a.conf\n", "", ""},
		{"include d/b.conf\n", "", "$X=${Y}\n$Y=${X}\ninclude /etc/*.conf\nrouter_id $X\n", "h2"},
		{"vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nfast_liveness {\ninterval 1ms\nmultiplier 3\n}\nvirtual_ipaddress {\n192.0.2.1\n}\n}\n", "", "", "xvrrp"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	for _, dir := range []string{"testdata/compat", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add("include a.conf\n", string(b), "", "xvrrp")
			}
		}
	}
	files := map[string]bool{"/etc/k.conf": true, "/etc/a.conf": true, "/etc/d/b.conf": true}
	f.Fuzz(func(t *testing.T, k, a, b, id string) {
		if id == "" || strings.ContainsAny(id, " \t\n") {
			id = "xvrrp"
		}
		fsys := fstest.MapFS{
			"etc/k.conf":   {Data: []byte(k)},
			"etc/a.conf":   {Data: []byte(a)},
			"etc/d/b.conf": {Data: []byte(b)},
		}
		start := time.Now()
		cfg, err := Load("/etc/k.conf", Options{FS: fsys, ConfigID: id})
		// Not a timing: a hang detector far above what the bounds allow.
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("Load took %v", d)
		}
		if cfg == nil {
			t.Fatal("Load returned no Config")
		}
		var ce *Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, d := range append(cfg.Warnings, diagsOf(ce)...) {
			if !files[d.Pos.File] || d.Pos.Line < 1 || d.Msg == "" {
				t.Fatalf("diagnostic without a place in the tree or a message: %#v", d)
			}
		}
		if ce == nil {
			cfg.Print(new(strings.Builder), asWritten{})
		}
	})
}

func diagsOf(e *Error) []Diag {
	if e == nil {
		return nil
	}
	return e.Diags
}
