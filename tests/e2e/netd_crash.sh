#!/bin/sh
# netd killed with SIGKILL between any two steps of an attach (and between
# requests), restarted, everything detached: links, addresses, the
# ruleset, the sysctls and netd's state are exactly as before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netd_helpers.inc"

STATE=$ORCH_RUN/netd/state.json
snapshot() {
	ip -o link | sed 's/ link-netns [^ ]*//'
	ip -o addr
	nft list ruleset
	cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables
	# The state but the id its journal follows, which only grows.
	sed 's/"journal":[0-9]*,//' "$STATE"
}
# The bridge-nf sysctl starts off, as on a host without br_netfilter use.
echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables
check "netd starts" netd_start
before=$(snapshot)

net=$(ncall network.create '{"name":"k_net","project":"k"}')
check_match "network created" '"ok":true' "$net"
netd_kill9
check "restart after kill -9 following create" netd_start
check_match "network survived" '"name":"k_net"' "$(ncall network.inspect '{"name":"k_net"}')"

attach() { ncall endpoint.attach "{\"network\":\"k_net\",\"container_id\":\"$1\",\"service\":\"$1\"}" --netns "/run/netns/$1"; }
has_eth0() { ip netns exec "$1" ip -o link show eth0 >/dev/null 2>&1; }
no_eth0() { ! has_eth0 "$1"; }
in_state() { grep -qE "\"container_id\": ?\"$1\"" "$STATE"; }
not_in_state() { ! in_state "$1"; }
for step in 1 2 3 4; do
	c=k$step
	ip netns add $c
	netd_stop
	NETD_TEST_CRASH_AT=$step netd_start
	out=$(attach $c 2>&1)
	check_match "step $step: netd died in the attach" "reading netd's reply|reset" "$out"
	check "step $step: restart" netd_start
	if [ $step -lt 4 ]; then
		check "step $step: not recorded, so not in the kernel" no_eth0 $c
		check "step $step: not recorded in the state" not_in_state $c
		check_eq "step $step: no stray veth on the host" "$((step - 1))" "$(ip -o link | grep -c ' ov-')"
		check_match "step $step: attach again works" '"ok":true' "$(attach $c)"
	else
		check "step $step: recorded and kept" in_state $c
		check "step $step: eth0 kept" has_eth0 $c
	fi
done
check "publish" ncallq port.publish '{"network":"k_net","container_id":"k1","host_port":9001,"container_port":80}'
check "links" ncallq links.set '{"network":"k_net","pairs":[{"from":"k1","to":"k2"}]}'
netd_kill9
check "restart after kill -9 following publish" netd_start
check_match "port kept" '"host_port":9001' "$(ncall network.inspect '{"name":"k_net"}')"
check_match "pair element rebuilt" '10\.210\.0\.2 \. 10\.210\.0\.3' "$(nft list set inet orch "$(nft list ruleset | sed -n 's/.*set \(n_[0-9a-f]*_pairs\).*/\1/p' | head -1)")"
check_match "port element rebuilt" 'tcp \. 9001' "$(nft list map inet orch port_any)"

# A container that died: its namespace (and veth) vanish; prune collects.
n_ov=$(ip -o link | grep -c ' ov-')
ip netns del k3
# The kernel destroys the namespace, and its veth with it, in the background.
veth_gone() { [ "$(ip -o link | grep -c ' ov-')" -lt "$n_ov" ]; }
wait_for 10 veth_gone
check_match "prune drops the dead endpoint, keeps the network" '"removed":\[\]' "$(ncall network.prune '{}')"
check "dead endpoint gone" not_in_state k3

for c in k1 k2 k4; do
	check "detach $c" ncallq endpoint.detach "{\"network\":\"k_net\",\"container_id\":\"$c\"}"
	netd_kill9
	netd_start
done
check "remove the network" ncallq network.remove '{"name":"k_net"}'
netd_kill9
check "restart once more" netd_start
after=$(snapshot)
check_eq "links, addresses, ruleset, sysctls and state as before" "$before" "$after"
finish
