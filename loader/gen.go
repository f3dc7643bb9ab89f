// Package loader loads xvrrp's BPF programs and maps, attaches them to interfaces,
// pins them, and gives typed access to every map.
package loader

//go:generate go tool bpf2go -tags linux -output-dir . -go-package loader -target bpfel -cc ${BPF_CLANG} -cflags "${BPF_CFLAGS}" -type xvrrp_instance_key -type xvrrp_instance -type xvrrp_peer -type xvrrp_vip_key -type xvrrp_instance_stats -type xvrrp_unicast_key -type xvrrp_unicast_peer -type xvrrp_advert_check -type xvrrp_event -type xvrrp_reason -type xvrrp_counter -type xvrrp_state -type xvrrp_event_kind -type xvrrp_family -type xvrrp_flag -type xvrrp_down_timer -type xvrrp_down_flag -type xvrrp_liveness -type xvrrp_probe -type xvrrp_probe_type bpf ../bpf/xvrrp.c -- -I../bpf
