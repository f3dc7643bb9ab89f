package config

import "strings"

// Keywords of keepalived's other parts: accepted with a warning that names them,
// because they do not change how VRRP behaves. Matched by exact name or prefix.
var otherParts = []struct {
	match string // "prefix_" or an exact keyword
	part  string
}{
	// SMTP alerts.
	{"notification_email", "SMTP alerts"},
	{"notification_email_from", "SMTP alerts"},
	{"smtp_", "SMTP alerts"},
	{"no_email_faults", "SMTP alerts"},
	{"no_checker_emails", "SMTP alerts"},
	// LVS and its health checkers.
	{"virtual_server", "LVS"},
	{"virtual_server_group", "LVS"},
	{"real_server", "LVS"},
	{"lvs_", "LVS"},
	{"checker_", "health checker"},
	{"rs_init_notifies", "health checker"},
	{"nftables_ipvs", "LVS"},
	{"SSL", "health checker"},
	// BFD subsystem itself (tracking it from VRRP is an error: track_bfd).
	{"bfd_", "BFD"},
	// SNMP, D-Bus.
	{"enable_snmp_", "SNMP"},
	{"snmp_socket", "SNMP"},
	{"enable_traps", "SNMP"},
	{"enable_dbus", "D-Bus"},
	{"dbus_service_name", "D-Bus"},
	// Tuning of keepalived's own processes, buffers and reloads.
	{"vrrp_process_name", "process tuning"},
	{"process_name", "process tuning"},
	{"process_names", "process tuning"},
	{"vrrp_netlink_", "process tuning"},
	{"vrrp_rx_bufs_", "process tuning"},
	{"process_monitor_rcv_bufs", "process tuning"},
	{"kernel_rx_buf_size", "process tuning"},
	{"umask", "process tuning"},
	{"random_seed", "process tuning"},
	{"data_use_instance", "process tuning"},
	{"config_save_dir", "process tuning"},
	{"tmp_config_directory", "process tuning"},
	{"reload_", "process tuning"},
	{"include_check", "process tuning"},
	{"fifo_write_vrrp_states_on_reload", "process tuning"},
	{"linkbeat_use_polling", "link polling (xvrrp follows links through netlink)"},
	{"linkbeat_interfaces", "link polling (xvrrp follows links through netlink)"},
	// keepalived implements no_accept with firewall rules; xvrrp fences in TC.
	{"vrrp_iptables", "firewall (xvrrp fences VIP traffic in TC)"},
	{"vrrp_ipsets", "firewall (xvrrp fences VIP traffic in TC)"},
	{"nftables", "firewall (xvrrp fences VIP traffic in TC)"},
	{"nftables_priority", "firewall (xvrrp fences VIP traffic in TC)"},
	{"nftables_ifindex", "firewall (xvrrp fences VIP traffic in TC)"},
	{"nftables_counters", "firewall (xvrrp fences VIP traffic in TC)"},
	{"disable_local_igmp", "firewall (xvrrp fences VIP traffic in TC)"},
	// keepalived raises its own real-time priority when its timers run late;
	// xvrrp's scheduling is vrrp_rt_priority / vrrp_priority alone.
	// Only what keepalived logs: xvrrp counts adverts of unknown VRIDs as
	// foreign in its status whatever this says.
	{"log_unknown_vrids", "logging (xvrrp counts foreign VRIDs in status)"},
}

func otherPart(key string) (string, bool) {
	for _, o := range otherParts {
		if key == o.match || strings.HasSuffix(o.match, "_") && strings.HasPrefix(key, o.match) {
			return o.part, true
		}
	}
	return "", false
}

// VRRP keywords keepalived knows and xvrrp does not implement: each would change
// how VRRP behaves, so accepting them silently would mislead.
var notImplemented = map[string]string{
	"net_namespace":             "not implemented: run xvrrp inside the namespace instead (ip netns exec)",
	"net_namespace_ipvs":        "not implemented: run xvrrp inside the namespace instead",
	"namespace_with_ipsets":     "not implemented",
	"instance":                  "not implemented: give each xvrrp its own --pin-dir and --state-dir",
	"use_pid_dir":               "not implemented: give each xvrrp its own --state-dir",
	"static_ipaddress":          "not implemented: xvrrp manages only virtual addresses; configure static ones with your network setup",
	"static_routes":             "not implemented: configure static routes with your network setup",
	"static_rules":              "not implemented: configure static rules with your network setup",
	"track_group":               "not implemented (it tracks static addresses)",
	"track_bfd":                 "not implemented: xvrrp has no BFD",
	"use_ipvlan":                "not implemented",
	"vrf":                       "not implemented",
	"old_unicast_checksum":      "not implemented: keepalived's pre-1.3.6 unicast VRRPv3 checksum (the multicast group in the pseudo-header) is neither sent nor accepted: such adverts are dropped as checksum",
	"dynamic_interfaces_ignore": "not implemented",
}

func unsupported(key string) (string, bool) {
	why, ok := notImplemented[key]
	return why, ok
}

// Address options keepalived takes on a virtual_ipaddress line and xvrrp does
// not apply to the address it adds: refused, as a keyword would be.
var vipOptionRefused = map[string]string{}
