#!/bin/bash
# Rootless orch against root orch and against rootless podman (Debian's
# podman with slirp4netns), as the same user, in one run:
#   - TCP throughput (iperf3, 3 s per run) container to container on one
#     network, from the host to a published port, and from a container to
#     another machine (a network namespace behind a veth: where rootless
#     podman's packets cross slirp4netns, a network stack in user space);
#     podman twice: with every container on slirp4netns (the issue's
#     peer), and on a user network (a bridge in its own namespace);
#   - stack10 `up -d` wall time, root and rootless orch alternating.
# Goals (issue: rootless): rootless orch >= 90% of root orch and >= 5x
# rootless podman for both throughputs; rootless stack10 up -d within
# 1.5x of root's.
# A user is made in a private /etc; netd runs as root, as on a shared
# server.  Everything runs in a private network and mount namespace
# and is removed afterwards.
#   REPS=5 tests/bench/bench_rootless.sh
set -u
. "$(dirname "$0")/sandbox.inc"
# "Another machine" for containers to reach out to: a network namespace
# behind a veth, at $HOSTIP.
HOSTIP=192.0.2.2
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
ORCH=$B/orch
REPS=${REPS:-5}
command -v iperf3 >/dev/null || { echo "iperf3 is not installed (make bench installs it)"; exit 1; }
W=$(mktemp -d /tmp/orch-bench-rl.XXXXXX)
chmod 755 "$W"
export ORCH_ROOT=$W/root ORCH_RUN=$W/run
mkdir -p "$ORCH_ROOT" "$ORCH_RUN"
chmod 755 "$ORCH_RUN"
cp -a /etc "$W/etc" && mount --bind "$W/etc" /etc
useradd -m -d "$W/home/bench" -s /bin/sh bench || exit 1
U=bench
mkdir -p "$W/home/$U/run" && chown "$U:" "$W/home/$U/run" && chmod 700 "$W/home/$U/run"
# slirp4netns opens /dev/net/tun, root's alone on this host: a node of our
# own, open to all, over it in this mount namespace only.
mkdir "$W/tun" && mount -t tmpfs tmpfs "$W/tun" && mknod -m 666 "$W/tun/tun" c 10 200 &&
	mount --bind "$W/tun/tun" /dev/net/tun
STACK10=$TOP/tests/soak/stack10.yaml
ANCHOR=$TOP/../shared/anchors/stack10.yaml
[ -f "$ANCHOR" ] && STACK10=$ANCHOR
cp "$STACK10" "$W/stack10.yaml" && chmod 644 "$W/stack10.yaml"
export ORCH_NETD_SOCKET=$ORCH_RUN/netd.sock
as() {
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home/$U" \
		XDG_RUNTIME_DIR="$W/home/$U/run" ORCH_NETD_SOCKET="$ORCH_NETD_SOCKET" \
		setpriv --reuid "$U" --regid "$U" --init-groups -- "$@"
}
HAVE_PODMAN=0
command -v podman >/dev/null && command -v slirp4netns >/dev/null && HAVE_PODMAN=1
cleanup() {
	"$ORCH" -p tp -f "$W/tp.yaml" down -t 0 >/dev/null 2>&1
	"$ORCH" -p s10 -f "$W/stack10.yaml" down -v -t 0 >/dev/null 2>&1
	(cd "$W" && as "$ORCH" -p tp -f "$W/tp.yaml" down -t 0 >/dev/null 2>&1)
	(cd "$W" && as "$ORCH" -p s10 -f "$W/stack10.yaml" down -v -t 0 >/dev/null 2>&1)
	[ $HAVE_PODMAN -eq 1 ] && (cd "$W" && as podman rm -af -t 0 >/dev/null 2>&1 &&
		as podman system reset -f >/dev/null 2>&1)
	[ -f "$W/iperf.pid" ] && kill "$(cat "$W/iperf.pid")" 2>/dev/null
	# Every netd of this network namespace (a down above may have started
	# one again).
	for p in $(pgrep -x netd); do
		[ "$(readlink "/proc/$p/ns/net")" = "$(readlink /proc/self/ns/net)" ] && kill "$p"
	done
	pkill -KILL -u "$U" 2>/dev/null
	awk -v w="$W" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m"; done
	umount -l /dev/net/tun 2>/dev/null
	rm -rf "$W" ${PTMP:+"$PTMP"}
}
trap cleanup EXIT
trap "echo interrupted >&2; exit 130" INT TERM

"$TOP/tests/bench/iperf-image.sh" "$W/iperf.tar" && chmod 644 "$W/iperf.tar"
"$ORCH" image import "$W/iperf.tar" bench-iperf:latest >/dev/null || exit 1
"$ORCH" image import "$B/busybox-rootfs.tar" localhost/bb:1 >/dev/null || exit 1
cd "$W" || exit 1
as "$ORCH" image import "$W/iperf.tar" bench-iperf:latest >/dev/null || { echo "rootless orch cannot import"; exit 1; }
as "$ORCH" image import "$B/busybox-rootfs.tar" localhost/bb:1 >/dev/null || exit 1
cat >"$W/tp.yaml" <<Y
services:
  server:
    image: bench-iperf:latest
    command: ["iperf3", "-s"]
    ports: ["\${PORT}:5201"]
  client:
    image: bench-iperf:latest
    command: ["sleep", "3600"]
    init: true
    depends_on: [server]
Y
chmod 644 "$W/tp.yaml"
gbps() { awk '/receiver/ { v=$7; u=$8; if (u ~ /^M/) v/=1000; if (u ~ /^K/) v/=1000000; printf "%.2f", v }'; }
# until_up PORT: the published port answers (bounded).
until_up() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# throughput NAME RUN...: c2c and pub for one side; RUN prefixes commands.
orch_tp() { # NAME PORT [as]
	local name=$1 port=$2
	shift 2
	PORT=$port "$@" env PORT="$port" "$ORCH" -p tp -f "$W/tp.yaml" up -d >/dev/null 2>&1 || { echo "$name: throughput stack failed"; return 1; }
	until_up "$port"
	c2c=$("$@" "$ORCH" -p tp -f "$W/tp.yaml" exec -T client iperf3 -c server -t 3 2>/dev/null | gbps)
	pub=$(iperf3 -c 127.0.0.1 -p "$port" -t 3 2>/dev/null | gbps)
	out=$("$@" "$ORCH" -p tp -f "$W/tp.yaml" exec -T client iperf3 -c "$HOSTIP" -p 15210 -t 3 2>/dev/null | gbps)
	"$@" env PORT="$port" "$ORCH" -p tp -f "$W/tp.yaml" down -t 0 >/dev/null 2>&1
	echo "${c2c:-?} ${pub:-?} ${out:-?}"
}
podman_tp() {
	local port=$1
	as podman network create tp >/dev/null 2>&1
	as podman import "$W/iperf.tar" localhost/bench-iperf:latest >/dev/null 2>&1
	as podman run -d --name server --network tp -p "$port:5201" localhost/bench-iperf:latest iperf3 -s >/dev/null 2>&1 &&
		as podman run -d --name client --network tp localhost/bench-iperf:latest sleep 3600 >/dev/null 2>&1 ||
		{ echo "? ? ?"; return; }
	until_up "$port"
	c2c=$(as podman exec client iperf3 -c server -t 3 2>/dev/null | gbps)
	pub=$(iperf3 -c 127.0.0.1 -p "$port" -t 3 2>/dev/null | gbps)
	out=$(as podman exec client iperf3 -c "$HOSTIP" -p 15210 -t 3 2>/dev/null | gbps)
	as podman rm -f -t 0 server client >/dev/null 2>&1
	as podman network rm tp >/dev/null 2>&1
	echo "${c2c:-?} ${pub:-?} ${out:-?}"
}
# The same with every container on slirp4netns of its own, published
# ports through slirp4netns's port handler: podman's rootless network
# when the containers are not on a user network.  One container reaches
# the other only through a published port (allow_host_loopback: the
# host's 127.0.0.1 is 10.0.2.2 there).
podman_slirp_tp() {
	local port=$1 net="slirp4netns:port_handler=slirp4netns,allow_host_loopback=true"
	as podman import "$W/iperf.tar" localhost/bench-iperf:latest >/dev/null 2>&1
	as podman run -d --name server --network "$net" -p "$port:5201" localhost/bench-iperf:latest iperf3 -s >/dev/null 2>"$W/slirp.err" &&
		as podman run -d --name client --network "$net" localhost/bench-iperf:latest sleep 3600 >/dev/null 2>>"$W/slirp.err" ||
		{ echo "podman with slirp4netns failed: $(head -c 300 "$W/slirp.err")" >&2; echo "? ? ?"; return; }
	until_up "$port"
	c2c=$(as podman exec client iperf3 -c 10.0.2.2 -p "$port" -t 3 2>/dev/null | gbps)
	pub=$(iperf3 -c 127.0.0.1 -p "$port" -t 3 2>/dev/null | gbps)
	out=$(as podman exec client iperf3 -c "$HOSTIP" -p 15210 -t 3 2>/dev/null | gbps)
	as podman rm -f -t 0 server client >/dev/null 2>&1
	echo "${c2c:-?} ${pub:-?} ${out:-?}"
}
if [ $HAVE_PODMAN -eq 1 ]; then
	# podman's run-time directory holds slirp4netns's API socket, named
	# by the container's 64-digit id: its path must stay under 108 bytes.
	PTMP=$(mktemp -d /tmp/pbXXXXXX) && chown "$U:" "$PTMP"
	mkdir -p "$W/home/$U/.config/containers"
	# As in ../shared/anchors/podman-env.sh: this host's hard open-files
	# limit, runc (crun refuses the hybrid cgroups), no systemd.
	cat >"$W/home/$U/.config/containers/containers.conf" <<C
[containers]
default_ulimits = ["nofile=20000:20000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$PTMP"
[network]
default_rootless_network_cmd = "slirp4netns"
C
	chown -R "$U:" "$W/home/$U/.config"
fi

touch "$W/outns" && unshare --net="$W/outns" true &&
	ip link add vo0 type veth peer name vo1 &&
	HOLD=$(nsenter --net="$W/outns" sh -c 'sleep 600 >/dev/null 2>&1 & echo $!') &&
	ip link set vo1 netns "$HOLD" && kill "$HOLD" &&
	ip addr add 192.0.2.1/24 dev vo0 && ip link set vo0 up &&
	nsenter --net="$W/outns" sh -c "ip link set lo up && ip addr add $HOSTIP/24 dev vo1 &&
		ip link set vo1 up && ip route add default via 192.0.2.1 &&
		iperf3 -s -p 15210 -D --pidfile $W/iperf.pid" ||
	{ echo "cannot make the other machine"; exit 1; }
read -r root_c2c root_pub root_out <<<"$(orch_tp root 15201)"
read -r rl_c2c rl_pub rl_out <<<"$(orch_tp rootless 15202 as)"
pm_c2c="?" pm_pub="?" pm_out="?" ps_c2c="?" ps_pub="?" ps_out="?"
[ $HAVE_PODMAN -eq 1 ] && read -r pm_c2c pm_pub pm_out <<<"$(podman_tp 15203)"
[ $HAVE_PODMAN -eq 1 ] && read -r ps_c2c ps_pub ps_out <<<"$(podman_slirp_tp 15204)"
kill "$(cat "$W/iperf.pid")" 2>/dev/null
row() { printf "%-34s %10s %10s %13s %13s\n" "$@"; }
row "TCP throughput, Gbit/s (iperf3)" "root orch" "rootless" "podman-rl net" "podman-rl slirp"
row "container -> container" "$root_c2c" "$rl_c2c" "$pm_c2c" "$ps_c2c"
row "host -> published port" "$root_pub" "$rl_pub" "$pm_pub" "$ps_pub"
row "container -> another machine" "$root_out" "$rl_out" "$pm_out" "$ps_out"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "?" }'; }
echo "rootless/root orch: container->container $(ratio "$rl_c2c" "$root_c2c"), published port $(ratio "$rl_pub" "$root_pub"), container->outside $(ratio "$rl_out" "$root_out") (goal >= 0.90)"
echo "rootless orch/rootless podman with slirp4netns: container->container $(ratio "$rl_c2c" "$ps_c2c")x, published port $(ratio "$rl_pub" "$ps_pub")x, container->outside $(ratio "$rl_out" "$ps_out")x (goal >= 5x)"
echo "rootless orch/rootless podman on a user network: container->container $(ratio "$rl_c2c" "$pm_c2c")x, published port $(ratio "$rl_pub" "$pm_pub")x, container->outside $(ratio "$rl_out" "$pm_out")x"
echo "(podman-rl slirp: each container on slirp4netns, ports through its port handler, one container reaching the other through a published port.  podman-rl net: a user network, which podman 4.3 makes a kernel bridge inside its rootless network namespace, with published ports through rootlessport, a user-space proxy, and traffic out through slirp4netns)"

# stack10 up -d, alternating; down between (not timed); one warm-up each.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n "$1" | awk '{a[NR]=$1} END { m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.0f", m }'; }
: >"$W/root.up"
: >"$W/rl.up"
for rep in $(seq 0 "$REPS"); do
	for side in root rl; do
		pre=""
		[ $side = rl ] && pre=as
		t0=$(now_ms)
		$pre "$ORCH" -p s10 -f "$W/stack10.yaml" up -d >/dev/null 2>&1 || { echo "$side: stack10 up failed"; exit 1; }
		t1=$(now_ms)
		$pre "$ORCH" -p s10 -f "$W/stack10.yaml" down -v -t 0 >/dev/null 2>&1
		[ "$rep" -gt 0 ] && echo $((t1 - t0)) >>"$W/$side.up"
	done
done
r=$(median "$W/root.up") l=$(median "$W/rl.up")
printf "%-40s root orch %s ms, rootless orch %s ms: %sx (goal <= 1.5x)\n" "stack10 up -d (median of $REPS)" "$r" "$l" "$(ratio "$l" "$r")"
