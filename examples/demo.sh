#!/bin/sh
# make demo: brings up compose.example.yaml and shows it working.
# Uses the real state roots ($ORCH_ROOT, default /var/lib/orch; $ORCH_RUN,
# default /run/orch) unless they are set.
set -eu
cd "$(dirname "$0")/.."
orch=build/orch
file=compose.example.yaml
[ "$(id -u)" -eq 0 ] || { echo "make demo: run as root (orch creates namespaces, bridges and nftables rules)" >&2; exit 1; }

if ! $orch image inspect busybox:latest >/dev/null 2>&1; then
	echo "==> importing the busybox image (build/busybox-rootfs.tar)"
	$orch image import build/busybox-rootfs.tar busybox:latest
fi

echo "==> orch up -d --wait -f $file"
$orch up -d --wait --wait-timeout 60 -f "$file"

echo
echo "==> orch -f $file ps"
$orch -f "$file" ps

echo
echo "==> a request through the published port: wget -qO- http://127.0.0.1:8080/cgi-bin/hello"
# A fresh Debian has no wget of its own; busybox (make deps) has one.
wget=wget
command -v wget >/dev/null || wget="busybox wget"
ok=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	if out=$(timeout 3 $wget -q -O - http://127.0.0.1:8080/cgi-bin/hello 2>/dev/null) && [ -n "$out" ]; then
		echo "$out"
		ok=1
		break
	fi
	sleep 0.3
done
if [ $ok -ne 1 ]; then
	echo "make demo: the web service did not answer on 127.0.0.1:8080" >&2
	exit 1
fi

echo
echo "==> link-only isolation: worker shares the back network with app but is not linked to it"
if $orch -f "$file" exec -T worker timeout 2 wget -q -O /dev/null http://app:8000/ 2>/dev/null; then
	echo "make demo: worker reached app, isolation is broken" >&2
	exit 1
fi
echo "worker -> app: refused, as it should be"

cat <<EOT

The stack is running.  Try:
  $orch -f $file logs -f worker
  $orch -f $file exec app sh
  $orch -f $file down -v        # removes every container, network, rule and the volume
EOT
