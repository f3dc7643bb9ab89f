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
	"startup_script":            "not implemented",
	"startup_script_timeout":    "not implemented",
	"shutdown_script":           "not implemented",
	"shutdown_script_timeout":   "not implemented",
	"static_ipaddress":          "not implemented: xvrrp manages only virtual addresses; configure static ones with your network setup",
	"static_routes":             "not implemented: configure static routes with your network setup",
	"static_rules":              "not implemented: configure static rules with your network setup",
	"track_group":               "not implemented (it tracks static addresses)",
	"garp_group":                "not implemented",
	"track_bfd":                 "not implemented: xvrrp has no BFD",
	"use_ipvlan":                "not implemented",
	"vrf":                       "not implemented",
	"old_unicast_checksum":      "not implemented: xvrrp uses the RFC 5798 checksum",
	"dynamic_interfaces_ignore": "not implemented",

	// Read before issue 17 and not honoured by run: refused until they are,
	// each moving back to the parser with its behaviour test.
	"skip_check_adv_addr":      "not implemented yet: xvrrp never compares an advert's addresses with virtual_ipaddress (keepalived does, for every advert, or with this for a new master's only)",
	"vrrp_skip_check_adv_addr": "not implemented yet: xvrrp never compares an advert's addresses with virtual_ipaddress (keepalived does, for every advert, or with this for a new master's only)",
	"dont_track_primary":       "not implemented: a master that cannot advertise on its interface loses its lease, so its fence closes (by design); the interface going down puts the instance in FAULT",
	"dynamic_interfaces":       "not implemented yet: an instance whose interface is missing at start is an error",
}

func unsupported(key string) (string, bool) {
	why, ok := notImplemented[key]
	return why, ok
}

// Address options keepalived takes on a virtual_ipaddress line and xvrrp does
// not apply to the address it adds: refused, as a keyword would be.
var vipOptionRefused = map[string]string{
	"no_track": "not implemented yet: xvrrp does not follow a VIP's own interface, with or without it (keepalived puts the instance in FAULT when it goes down, unless no_track)",
}

// Options of a unicast_peer line keepalived takes and xvrrp refuses.
var peerOptionRefused = map[string]string{
	"min_ttl": "not implemented yet: a unicast peer's adverts are taken at any TTL",
	"max_ttl": "not implemented yet: a unicast peer's adverts are taken at any TTL",
}
