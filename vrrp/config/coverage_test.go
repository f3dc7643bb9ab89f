package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// behaviourTests is the test that shows what each keyword the parser accepts
// does, as "BLOCK KEYWORD" → "DIR/TestName" (DIR from the repository's root).
// A keyword is here, or warns (otherParts), or is refused (notImplemented):
// TestEveryKeywordIsCovered holds the three together, so that no keyword can
// be read and silently ignored again (issue 17).
var behaviourTests = map[string]string{
	"top global_defs":        "cmd/xvrrp/TestCheckProcessTuning",
	"top vrrp_script":        "tests/TestHealthSeedScenario",
	"top xvrrp_check":        "tests/TestHealthSeedScenario",
	"top vrrp_instance":      "tests/TestElectionAndLinkCut",
	"top vrrp_sync_group":    "tests/TestSyncGroup",
	"top garp_group":         "vrrp/agent/TestGarpInterval",
	"top vrrp_track_file":    "tests/TestNotify",
	"top track_file":         "health/TestTrackers",
	"top vrrp_track_process": "tests/TestHealthSeedScenario",
	"top track_process":      "tests/TestHealthSeedScenario",

	"global_defs router_id":                       "vrrp/config/TestParseFull", // named by check; keepalived uses it in SMTP alerts
	"global_defs vrrp_version":                    "vrrp/config/TestParseFull",
	"global_defs vrrp_mcast_group4":               "vrrp/config/TestParseFull",
	"global_defs vrrp_mcast_group6":               "vrrp/config/TestResolved",
	"global_defs vrrp_garp_master_delay":          "vrrp/agent/TestGarpKeywords",
	"global_defs vrrp_garp_master_repeat":         "vrrp/agent/TestGarpKeywords",
	"global_defs vrrp_garp_master_refresh":        "vrrp/agent/TestGarpKeywords",
	"global_defs vrrp_garp_master_refresh_repeat": "vrrp/agent/TestGarpKeywords",
	"global_defs vrrp_garp_lower_prio_repeat":     "vrrp/agent/TestGarpKeywords",
	"global_defs vrrp_garp_interval":              "vrrp/agent/TestGarpInterval",
	"global_defs vrrp_gna_interval":               "vrrp/agent/TestGarpInterval",
	"global_defs vrrp_garp_lower_prio_delay":      "vrrp/agent/TestGarpLowerPrio",
	"global_defs vrrp_garp_extra_if":              "vrrp/agent/TestGarpExtraIf",
	"global_defs vmac_prefix":                     "vrrp/config/TestVMACDefaults",
	"global_defs vmac_addr_prefix":                "vrrp/config/TestAddrVMACNames",
	"global_defs vrrp_min_garp":                   "vrrp/agent/TestGarpKeywords",
	"global_defs vrrp_startup_delay":              "tests/TestStartupDelay",
	"global_defs enable_script_security":          "health/TestScriptSecurity",
	"global_defs script_user":                     "vrrp/config/TestKeywordResolution",
	"global_defs vrrp_strict":                     "vrrp/config/TestKeywordResolution",
	"global_defs vrrp_down_timer_adverts":         "vrrp/agent/TestDownTimerAdverts",
	"global_defs notify_fifo":                     "tests/TestNotify",
	"global_defs notify_fifo_script":              "tests/TestNotify",
	"global_defs vrrp_notify_fifo":                "vrrp/config/TestKeywordResolution",
	"global_defs vrrp_notify_fifo_script":         "vrrp/config/TestKeywordResolution",
	"global_defs vrrp_notify_priority_changes":    "vrrp/config/TestKeywordResolution",
	"global_defs default_interface":               "vrrp/config/TestKeywordResolution",
	"global_defs vrrp_lower_prio_no_advert":       "vrrp/agent/TestAdvertKeywords",
	"global_defs vrrp_higher_prio_send_advert":    "vrrp/agent/TestAdvertKeywords",
	"global_defs vrrp_skip_check_adv_addr":        "tests/TestAdvertAddressCheck",
	"global_defs dynamic_interfaces":              "tests/TestDynamicInterfaces",
	"global_defs startup_script":                  "tests/TestStartupShutdownScripts",
	"global_defs shutdown_script":                 "tests/TestStartupShutdownScripts",
	"global_defs startup_script_timeout":          "tests/TestStartupShutdownScripts",
	"global_defs shutdown_script_timeout":         "tests/TestStartupShutdownScripts",
	"global_defs vrrp_check_unicast_src":          "loader/TestXDPMatchesDecoder", // always on: XDP takes unicast peers' adverts only
	"global_defs vrrp_rt_priority":                "cmd/xvrrp/TestCheckProcessTuning",
	"global_defs max_auto_priority":               "cmd/xvrrp/TestCheckProcessTuning",
	"global_defs min_auto_priority_delay":         "cmd/xvrrp/TestCheckProcessTuning",
	"global_defs vrrp_priority":                   "cmd/xvrrp/TestCheckProcessTuning",
	"global_defs vrrp_rlimit_rttime":              "cmd/xvrrp/TestCheckProcessTuning",
	"global_defs vrrp_no_swap":                    "cmd/xvrrp/TestCheckProcessTuning",
	"global_defs vrrp_cpu_affinity":               "cmd/xvrrp/TestCheckProcessTuning",

	"garp_group garp_interval": "vrrp/agent/TestGarpInterval",
	"garp_group gna_interval":  "vrrp/agent/TestGarpInterval",
	"garp_group interface":     "vrrp/agent/TestGarpInterval",
	"garp_group interfaces":    "cmd/xvrrp/TestCheckGarpGroup", // refused at its line

	"vrrp_script script":    "tests/TestHealthSeedScenario",
	"vrrp_script interval":  "tests/TestHealthSeedScenario",
	"vrrp_script timeout":   "health/TestScriptOutcomes",
	"vrrp_script weight":    "tests/TestHealthSeedScenario",
	"vrrp_script rise":      "health/TestRiseFall",
	"vrrp_script fall":      "health/TestRiseFall",
	"vrrp_script init_fail": "health/TestRiseFall",
	"vrrp_script user":      "health/TestScriptSecurityAttacks",

	"xvrrp_check tcp_connect": "vrrp/config/TestXvrrpCheck",
	"xvrrp_check http_get":    "tests/TestHealthSeedScenario",
	"xvrrp_check status":      "tests/TestHealthSeedScenario",
	"xvrrp_check interval":    "tests/TestHealthSeedScenario",
	"xvrrp_check timeout":     "tests/TestHealthSeedScenario",
	"xvrrp_check weight":      "tests/TestHealthSeedScenario",
	"xvrrp_check rise":        "tests/TestHealthSeedScenario",
	"xvrrp_check fall":        "tests/TestHealthSeedScenario",
	"xvrrp_check init_fail":   "health/TestRiseFall",

	"vrrp_instance state":                      "tests/TestForgedAdverts",
	"vrrp_instance interface":                  "tests/TestElectionAndLinkCut",
	"vrrp_instance virtual_router_id":          "tests/TestElectionAndLinkCut",
	"vrrp_instance priority":                   "tests/TestElectionAndLinkCut",
	"vrrp_instance advert_int":                 "tests/TestElectionAndLinkCut",
	"vrrp_instance version":                    "tests/TestInteropWithKeepalived",
	"vrrp_instance authentication":             "tests/TestInteropWithKeepalived",
	"vrrp_instance virtual_ipaddress":          "tests/TestElectionAndLinkCut",
	"vrrp_instance virtual_ipaddress_excluded": "tests/TestExcludedVIPs",
	"vrrp_instance virtual_routes":             "tests/TestVirtualRoutesAndRules",
	"vrrp_instance virtual_rules":              "tests/TestVirtualRoutesAndRules",
	"vrrp_instance nopreempt":                  "vrrp/agent/TestPreemption",
	"vrrp_instance no_preempt":                 "vrrp/config/TestKeywordResolution",
	"vrrp_instance preempt":                    "tests/TestReturnOfTheMaster",
	"vrrp_instance preempt_delay":              "tests/TestReturnOfTheMaster",
	"vrrp_instance accept":                     "tests/TestAcceptMode",
	"vrrp_instance no_accept":                  "tests/TestAcceptMode",
	"vrrp_instance mcast_src_ip":               "vrrp/config/TestKeywordResolution",
	"vrrp_instance mcast_dst_ip":               "vrrp/config/TestResolved",
	"vrrp_instance unicast_fault_no_peer":      "tests/TestUnicastFaultNoPeerRun",
	"vrrp_instance unicast_ttl":                "tests/TestUnicastTTLSent",
	"vrrp_instance check_unicast_src":          "loader/TestXDPMatchesDecoder",
	"vrrp_instance v3_checksum_as_v2":          "tests/TestChecksumAsV2",
	"vrrp_instance dont_track_primary":         "tests/TestDontTrackPrimary",
	"vrrp_instance skip_check_adv_addr":        "tests/TestAdvertAddressCheck",
	"vrrp_instance unicast_src_ip":             "tests/TestInteropWithKeepalived",
	"vrrp_instance unicast_peer":               "tests/TestInteropWithKeepalived",
	"vrrp_instance track_interface":            "tests/TestTrackInterface",
	"vrrp_instance track_script":               "tests/TestHealthSeedScenario",
	"vrrp_instance track_file":                 "tests/TestNotify",
	"vrrp_instance track_process":              "tests/TestHealthSeedScenario",
	"vrrp_instance garp_master_delay":          "vrrp/agent/TestGarpKeywords",
	"vrrp_instance garp_master_repeat":         "vrrp/agent/TestGarpKeywords",
	"vrrp_instance garp_master_refresh":        "vrrp/agent/TestGarpKeywords",
	"vrrp_instance garp_master_refresh_repeat": "vrrp/agent/TestGarpKeywords",
	"vrrp_instance garp_lower_prio_delay":      "vrrp/agent/TestGarpLowerPrio",
	"vrrp_instance garp_extra_if":              "vrrp/agent/TestGarpExtraIf",
	"vrrp_instance use_vmac":                   "tests/TestVMAC",
	"vrrp_instance vmac_xmit_base":             "tests/TestVMAC",
	"vrrp_instance use_vmac_addr":              "tests/TestVMACAddr",
	"vrrp_instance garp_lower_prio_repeat":     "vrrp/agent/TestGarpKeywords",
	"vrrp_instance lower_prio_no_advert":       "vrrp/agent/TestAdvertKeywords",
	"vrrp_instance higher_prio_send_advert":    "tests/TestHigherPrioSendAdvert",
	"vrrp_instance promote_secondaries":        "tests/TestPromoteSecondaries",
	"vrrp_instance track_src_ip":               "tests/TestTrackSrcIP",
	"vrrp_instance strict_mode":                "vrrp/config/TestKeywordResolution",
	"vrrp_instance down_timer_adverts":         "vrrp/agent/TestDownTimerAdverts",
	"vrrp_instance native_ipv6":                "vrrp/config/TestKeywordResolution",
	"vrrp_instance debug":                      "vrrp/config/TestKeywordResolution",
	"vrrp_instance notify_master":              "tests/TestNotify",
	"vrrp_instance notify_backup":              "tests/TestNotify",
	"vrrp_instance notify_fault":               "tests/TestNotify",
	"vrrp_instance notify_stop":                "tests/TestNotify",
	"vrrp_instance notify":                     "tests/TestNotify",
	"vrrp_instance notify_deleted":             "cmd/xvrrp/TestCheckShowsRunWarnings",
	"vrrp_instance notify_priority_changes":    "tests/TestNotify",
	"vrrp_instance notify_master_rx_lower_pri": "tests/TestNotify",

	"vrrp_instance fast_liveness": "tests/TestLivenessTakesOverAfterMultiplierMisses",
	"fast_liveness interval":      "tests/TestLivenessFrozenMaster",
	"fast_liveness multiplier":    "tests/TestLivenessTakesOverAfterMultiplierMisses",

	"authentication auth_type": "tests/TestInteropWithKeepalived",
	"authentication auth_pass": "tests/TestInteropWithKeepalived",

	"vrrp_sync_group group":                      "tests/TestSyncGroup",
	"vrrp_sync_group track_interface":            "vrrp/config/TestKeywordResolution",
	"vrrp_sync_group track_script":               "health/TestRange",
	"vrrp_sync_group track_file":                 "vrrp/config/TestKeywordResolution",
	"vrrp_sync_group track_process":              "vrrp/config/TestKeywordResolution",
	"vrrp_sync_group sync_group_tracking_weight": "health/TestRange",
	"vrrp_sync_group global_tracking":            "vrrp/config/TestKeywordResolution",
	"vrrp_sync_group notify_master":              "tests/TestNotify",
	"vrrp_sync_group notify_backup":              "tests/TestNotify",
	"vrrp_sync_group notify_fault":               "tests/TestNotify",
	"vrrp_sync_group notify_stop":                "tests/TestNotify",
	"vrrp_sync_group notify":                     "tests/TestNotify",
	"vrrp_sync_group notify_deleted":             "cmd/xvrrp/TestCheckShowsRunWarnings",
	"vrrp_sync_group notify_priority_changes":    "vrrp/config/TestKeywordResolution",

	"vrrp_track_file file":      "tests/TestNotify",
	"vrrp_track_file weight":    "tests/TestNotify",
	"vrrp_track_file init_file": "health/TestFileValue",

	"vrrp_track_process process":         "health/TestTrackProcess",
	"vrrp_track_process param_match":     "health/TestProcessKeywords",
	"vrrp_track_process full_command":    "health/TestProcessKeywords",
	"vrrp_track_process weight":          "tests/TestHealthSeedScenario",
	"vrrp_track_process quorum":          "health/TestProcessKeywords",
	"vrrp_track_process quorum_max":      "health/TestProcessKeywords",
	"vrrp_track_process fork_delay":      "health/TestTrackProcessDelay",
	"vrrp_track_process terminate_delay": "health/TestTrackProcessDelay",
	"vrrp_track_process delay":           "health/TestTrackProcessDelay",
}

// everyBlock opens each block the parser has a keyword table for, once.
const everyBlock = `global_defs {
}
vrrp_script s {
    script /bin/true
}
xvrrp_check c {
    tcp_connect 127.0.0.1:1
}
vrrp_instance i {
    authentication {
    }
    fast_liveness {
    }
}
vrrp_sync_group g {
}
vrrp_track_file f {
    file /f
}
vrrp_track_process p {
    process p
}
garp_group {
    interface eth0
}
`

// acceptedKeywords lists every keyword of every keyword table walk
// dispatches on, as "BLOCK KEYWORD".
func acceptedKeywords(t *testing.T) []string {
	t.Helper()
	d := &diags{fileOrder: map[string]int{}}
	lx := &lexer{fsys: fstest.MapFS{"k.conf": {Data: []byte(everyBlock)}}, configID: "x", defs: map[string]string{}, diags: d}
	lx.readFile("k.conf", Pos{File: "k.conf"})
	var keys []string
	blocks := map[string]bool{}
	parseLinesWith(lx.lines, d, func(ctx string, table map[string]handler) {
		block := strings.Fields(ctx)[0]
		if block == "the" {
			block = "top"
		}
		blocks[block] = true
		for k := range table {
			keys = append(keys, block+" "+k)
		}
	})
	for _, b := range []string{"top", "global_defs", "vrrp_script", "xvrrp_check", "vrrp_instance", "authentication", "fast_liveness", "vrrp_sync_group", "vrrp_track_file", "vrrp_track_process", "garp_group"} {
		if !blocks[b] {
			t.Fatalf("no keyword table seen for %s: everyBlock misses it", b)
		}
	}
	slices.Sort(keys)
	return keys
}

// testNames finds every Test function of the repository, as "DIR/TestName".
func testNames(t *testing.T) map[string]bool {
	t.Helper()
	root := filepath.Join("..", "..")
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			names[filepath.ToSlash(dir)+"/"+m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestEveryKeywordIsCovered: every keyword the parser accepts is shown to work
// by a test that exists, and no keyword is both accepted and refused or
// warned about.
func TestEveryKeywordIsCovered(t *testing.T) {
	tests := testNames(t)
	accepted := acceptedKeywords(t)
	for _, k := range accepted {
		name, ok := behaviourTests[k]
		_, key, _ := strings.Cut(k, " ")
		switch {
		case !ok:
			t.Errorf("%s: accepted with no behaviour test: add one to behaviourTests, or refuse it in notImplemented", k)
		case !tests[name]:
			t.Errorf("%s: its behaviour test %s does not exist", k, name)
		}
		if _, refused := unsupported(key); refused {
			t.Errorf("%s: accepted by the parser and listed in notImplemented", k)
		}
		if part, warned := otherPart(key); warned {
			t.Errorf("%s: accepted by the parser and listed in otherParts (%s)", k, part)
		}
	}
	for k := range behaviourTests {
		if !slices.Contains(accepted, k) {
			t.Errorf("%s: in behaviourTests but not accepted by the parser", k)
		}
	}
}

// TestRefusedKeywords: each keyword of notImplemented is an error at its
// file:line, with its reason, wherever it is written; each of otherParts is a
// warning naming it.
func TestRefusedKeywords(t *testing.T) {
	for key, why := range notImplemented {
		for _, where := range []string{"global_defs {\n    %s 1\n}\n", "vrrp_instance VI_1 {\n    %s 1\n}\n"} {
			text := strings.Replace(where, "%s", key, 1)
			_, err := Parse("k.conf", text)
			want := "k.conf:2: " + key + ": " + why
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %v, want %q", text, err, want)
			}
		}
	}
	for _, o := range otherParts {
		key := o.match
		if strings.HasSuffix(key, "_") {
			key += "x"
		}
		c, _ := Parse("k.conf", "global_defs {\n    "+key+" 1\n}\n")
		if c == nil || len(c.Warnings) == 0 || c.Warnings[0].Pos.Line != 2 || !strings.Contains(c.Warnings[0].Msg, key+" is for keepalived's "+o.part) {
			t.Errorf("%s: warnings %v, want one at line 2 naming it", key, c.Warnings)
		}
	}
	for opt, why := range vipOptionRefused {
		line := "192.0.2.1 " + opt
		_, err := Parse("k.conf", "vrrp_instance VI_1 {\n    virtual_ipaddress {\n        "+line+"\n    }\n}\n")
		want := "k.conf:3: 192.0.2.1: address option " + opt + ": " + why
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", line, err, want)
		}
	}
}
