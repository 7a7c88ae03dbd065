"""netd benchmark driver: talks the protocol directly (no process per call)
so that the medians are netd's own cost.  Run by bench_netd.sh inside its
sandbox."""
import json, os, socket, statistics, subprocess, sys, time

SOCK = os.path.join(os.environ["ORCH_RUN"], "netd.sock")


class Netd:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.connect(SOCK)

    def call(self, op, args, fd=None):
        msg = json.dumps({"v": 1, "op": op, "args": args}).encode()
        if fd is None:
            self.s.send(msg)
        else:
            socket.send_fds(self.s, [msg], [fd])
        r = json.loads(self.s.recv(8 << 20))
        if not r["ok"]:
            raise RuntimeError(f"{op}: {r['error']}")
        return r["result"]


def timed(f):
    t = time.perf_counter()
    r = f()
    return (time.perf_counter() - t) * 1000, r


def netns(name):
    subprocess.run(["ip", "netns", "add", name], check=True)
    return os.open(f"/run/netns/{name}", os.O_RDONLY)


def med(xs):
    return f"{statistics.median(xs):.2f} ms"


def main():
    n = Netd()
    creates = []
    for i in range(10):
        ms, _ = timed(lambda: n.call("network.create", {"name": f"b_c{i}", "project": "b"}))
        creates.append(ms)
    for i in range(10):
        n.call("network.remove", {"name": f"b_c{i}"})
    print(f"network create: median {med(creates)} (10 runs)")

    net = n.call("network.create", {"name": "b_net", "project": "b"})
    attaches = []
    for i in range(100):
        fd = netns(f"b{i}")
        ms, _ = timed(lambda: n.call("endpoint.attach", {"network": "b_net", "container_id": f"b{i}", "service": f"svc{i}"}, fd))
        os.close(fd)
        attaches.append(ms)
    print(f"endpoint attach: median {med(attaches)} (100 endpoints on one network)")
    pairs = [{"from": f"svc{i}", "to": f"svc{i + 1}"} for i in range(99)]
    ms, _ = timed(lambda: n.call("links.set", {"network": "b_net", "pairs": pairs}))
    print(f"links set: {ms:.2f} ms (99 pairs, 100 endpoints)")
    pubs = []
    for i in range(20):
        ms, _ = timed(lambda: n.call("port.publish", {"network": "b_net", "container_id": f"b{i}", "host_port": 20000 + i, "container_port": 80}))
        pubs.append(ms)
    print(f"port publish: median {med(pubs)} (20 ports)")
    out = subprocess.run(["ip", "netns", "exec", "b0", sys.executable, __file__, "resolve", net["gateway"], "svc1"],
                         capture_output=True, text=True, check=True).stdout.strip()
    print(f"resolve a name: median {out} (200 queries)")
    for i in range(100):
        n.call("endpoint.detach", {"network": "b_net", "container_id": f"b{i}"})
        subprocess.run(["ip", "netns", "del", f"b{i}"], check=True)
    n.call("network.remove", {"name": "b_net"})

    # Rule count for 10 networks x 20 endpoints (link-only, a chain of pairs).
    for k in range(10):
        n.call("network.create", {"name": f"r_{k}", "project": "r"})
        for i in range(20):
            fd = netns(f"r{k}_{i}")
            n.call("endpoint.attach", {"network": f"r_{k}", "container_id": f"r{k}_{i}", "service": f"s{i}"}, fd)
            os.close(fd)
        n.call("links.set", {"network": f"r_{k}", "pairs": [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(19)]})
    listing = subprocess.run(["nft", "-a", "list", "table", "inet", "orch"], capture_output=True, text=True, check=True).stdout
    rules = sum(1 for l in listing.splitlines()
                if l.rstrip().split("# handle")[0].strip()
                and "# handle" in l
                and not l.strip().startswith(("table", "chain", "set", "map")))
    elements = listing.count(" . ")
    print(f"nft rules for 10 networks x 20 endpoints: {rules} (plus {elements} set/map elements)")
    for k in range(10):
        n.call("network.remove", {"name": f"r_{k}"})


def resolve(server, name):
    """Times A queries for name from inside an endpoint's namespace."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    times = []
    for i in range(200):
        q = (i & 0xffff).to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x00\x01\x00\x01"
        t = time.perf_counter()
        s.sendto(q, (server, 53))
        r = s.recv(512)
        times.append((time.perf_counter() - t) * 1000)
        assert r[3] & 0xf == 0 and r[7] == 1, "no answer"
    print(f"{statistics.median(times):.3f} ms")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "resolve":
        resolve(sys.argv[2], sys.argv[3])
    else:
        main()
