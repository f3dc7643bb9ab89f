package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const samples = "/usr/share/doc/keepalived/samples"

// TestDebianSamples: the VRRP samples shipped with Debian's keepalived are
// accepted, or rejected only for keywords outside what xvrrp implements, each
// named in the error.
func TestDebianSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(samples, "keepalived.conf.*"))
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no keepalived samples in %s (make test installs keepalived)", samples)
		}
		t.Skipf("keepalived's samples are not installed in %s", samples)
	}
	// Samples xvrrp rejects, and the keywords their errors name.
	rejected := map[string][]string{
		"keepalived.conf.SSL_GET":         {"auth_type AH"},
		"keepalived.conf.track_interface": {"static_routes"},
		// Multipath routes (via A or B) are not implemented.
		"keepalived.conf.vrrp.routes": {"static_routes", "virtual_routes"},
		// The sample's "to 192.168.200./24" is no prefix.
		"keepalived.conf.vrrp.rules":            {"static_rules", "virtual_rules"},
		"keepalived.conf.vrrp.static_ipaddress": {"static_ipaddress"},
		"keepalived.conf.conditional_conf@high": {"net_namespace"},
		"keepalived.conf.conditional_conf@low":  {"net_namespace"},
		// keepalived rejects these too (keepalived -t exits 5): without -i the
		// script lines are dropped; the sync group lacks its group block.
		"keepalived.conf.conditional_conf": {"vrrp_script check_VI_0 has no script"},
		"keepalived.conf.vrrp.lvs_syncd":   {"vrrp_sync_group VG1 has no group", "unknown keyword 'VI_2'", "unknown keyword 'VI_3'"},
	}
	keyword := regexp.MustCompile(`^(\w+): not implemented|^(virtual_r\w+): |^(auth_type AH)|^(unknown keyword '\w+')|^(vrrp_\w+ \w+ has no \w+)`)
	run := func(t *testing.T, name, file, id string) {
		cfg, err := Load(file, Options{ConfigID: id})
		var ce *Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatal(err)
		}
		var got []string
		if ce != nil {
			for _, d := range ce.Diags {
				m := keyword.FindStringSubmatch(d.Msg)
				if m == nil {
					t.Errorf("error that names no keyword: %v", d)
					continue
				}
				for _, g := range m[1:] {
					if g != "" && !slices.Contains(got, g) {
						got = append(got, g)
					}
				}
			}
		}
		if diff := cmp.Diff(rejected[name], got); diff != "" {
			t.Errorf("rejected for (-want +got):\n%s", diff)
		}
		if err == nil && len(cfg.Instances) == 0 && !strings.Contains(name, "virtual") && !strings.HasSuffix(name, "fwmark") {
			// LVS-only samples have instances too; a VRRP sample without
			// any would mean the parser lost them.
			t.Logf("%s: no vrrp_instance", name)
		}
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) { run(t, name, f, "xvrrp-test") })
		if strings.HasSuffix(name, "conditional_conf") {
			for _, id := range []string{"high", "low"} {
				t.Run(name+"@"+id, func(t *testing.T) { run(t, name+"@"+id, f, id) })
			}
		}
	}
}

// TestCorpus: configurations as found in the wild (testdata/compat) are valid,
// or refused only for the keywords xvrrp does not implement yet, listed here;
// the broken ones (testdata/invalid) are not. tests.TestKeepalivedAgrees runs
// real keepalived -t over the same files.
func TestCorpus(t *testing.T) {
	refused := map[string][]string{}
	keyword := regexp.MustCompile(`^(\w+): not implemented`)
	for dir, wantValid := range map[string]bool{"testdata/compat": true, "testdata/invalid": false} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		if len(files) == 0 {
			t.Fatalf("no configurations in %s", dir)
		}
		for _, f := range files {
			t.Run(f, func(t *testing.T) {
				_, err := Load(f, Options{})
				if want, ok := refused[f]; ok {
					var ce *Error
					if !errors.As(err, &ce) {
						t.Fatalf("Load = %v, want refusals of %v", err, want)
					}
					var got []string
					for _, d := range ce.Diags {
						m := keyword.FindStringSubmatch(d.Msg)
						if m == nil {
							t.Errorf("error other than a keyword not implemented: %v", d)
							continue
						}
						got = append(got, m[1])
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("refused (-want +got):\n%s", diff)
					}
					return
				}
				if (err == nil) != wantValid {
					t.Errorf("valid = %v, want %v: %v", err == nil, wantValid, err)
				}
			})
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(full)
	f.Add(instance(base))
	f.Add("$A=x \\\ny\n@^z $A\ninclude nowhere/{a,b}\n~SEQ(i,1,2) x\n\"unterminated\n} {\n")
	for _, dir := range []string{"testdata/compat", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse("k.conf", text)
		if cfg == nil {
			t.Fatal("Parse returned no Config")
		}
		var ce *Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if ce != nil {
			for _, d := range ce.Diags {
				if d.Pos.File != "k.conf" || d.Pos.Line < 1 || d.Msg == "" {
					t.Fatalf("error without a place or a message: %#v", d)
				}
			}
			return
		}
		// A valid configuration prints without panicking and has what runs need.
		cfg.Print(new(strings.Builder), asWritten{})
		for _, in := range cfg.Instances {
			if in.VRID == 0 || in.Interface == "" || len(in.VIPs) == 0 || (in.Version != 2 && in.Version != 3) {
				t.Fatalf("valid instance missing essentials: %+v", in)
			}
		}
	})
}
