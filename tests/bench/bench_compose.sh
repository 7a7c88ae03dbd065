#!/bin/sh
# Loading a generated 200-service compose file (parse, interpolate,
# merge, validate: `orch config -q`).  The machine is shared, so the
# figure is CPU time (user+sys, median of 21 runs) minus that of starting
# orch at all (`orch version`); wall time is printed too.  Goal: < 20 ms.
set -eu
cd "$(dirname "$0")/../.."
B=build
T=$(mktemp -d /tmp/orch-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
python3 - "$T/compose.yaml" <<'PY'
import sys
out = ["x-common: &common", "  restart: unless-stopped",
       "  logging: {driver: json-file, options: {max-size: 10m}}", "services:"]
for i in range(200):
    out += [f"  svc{i}:", "    <<: *common",
            f"    image: registry.example.com/team/svc{i}:${{TAG:-1.0}}",
            f"    command: [\"/bin/app\", \"--port\", \"{8000 + i}\"]",
            f"    ports: [\"{10000 + i}:{8000 + i}\", \"127.0.0.1:{20000 + i}:9000/udp\"]",
            "    environment:", f"      SERVICE: svc{i}", "      LOG_LEVEL: ${LOG_LEVEL:-info}",
            "      DB_URL: postgres://db:5432/app",
            f"    volumes: [\"./data/svc{i}:/data\", \"cache:/cache:ro\"]",
            "    networks: [front, back]",
            "    healthcheck: {test: [\"CMD\", \"true\"], interval: 30s, timeout: 5s, retries: 3}",
            "    deploy: {resources: {limits: {cpus: \"0.5\", memory: 256m}}}",
            f"    labels: {{team: core, index: \"{i}\"}}"]
    if i:
        out.append(f"    depends_on: {{svc{i - 1}: {{condition: service_started}}}}")
out += ["networks:", "  front:", "  back:", "    ipam: {config: [{subnet: 10.20.0.0/16}]}",
        "volumes:", "  cache:"]
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
"$B/orch" config -f "$T/compose.yaml" -q
python3 - "$B/orch" "$T/compose.yaml" <<'PY'
import os, subprocess, sys, time

def run(args):
    """CPU seconds (user+sys) and wall seconds of one run."""
    t = time.perf_counter()
    pid = os.posix_spawn(args[0], args, os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{args} failed")
    return (ru.ru_utime + ru.ru_stime) * 1000, (time.perf_counter() - t) * 1000

def median(v):
    return sorted(v)[len(v) // 2]

base = [run([sys.argv[1], "version"]) for _ in range(21)]
load = [run([sys.argv[1], "config", "-q", "-f", sys.argv[2]]) for _ in range(21)]
cpu = median([c for c, _ in load]) - median([c for c, _ in base])
print(f"compose load, 200 services: {cpu:.2f} ms CPU (config -q {median([c for c, _ in load]):.2f} ms "
      f"minus process start {median([c for c, _ in base]):.2f} ms); wall {median([w for _, w in load]):.2f} ms "
      f"on a machine with load average {os.getloadavg()[0]:.1f}; goal < 20 ms")
sys.exit(0 if cpu < 20 else 1)
PY
