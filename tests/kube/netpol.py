#!/usr/bin/env python3
"""Evaluates Kubernetes NetworkPolicies over the pods of generated
manifests: for every ordered pair of workloads (Deployment, StatefulSet,
Job) and every container port of the second, whether a connection from
the first is allowed, as the NetworkPolicy API defines it:

  - a pod selected by no policy of a type (Ingress, Egress) is open in
    that direction; a selected pod allows what one rule of one of the
    policies selecting it allows (policies add up, never subtract);
  - a rule without `from`/`to` matches every peer, one without `ports`
    every port; a podSelector peer without a namespaceSelector means pods
    of the policy's own namespace whose labels include matchLabels;
  - a connection needs the ingress side of the destination and the egress
    side of the source.

Usage: netpol.py FILE...   Prints "FROM TO PORT/PROTO allow|deny" sorted,
with workload names (the compose service names)."""
import sys

import yaml

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def selects(selector, labels):
    """Whether a label selector (matchLabels, matchExpressions In/NotIn/
    Exists/DoesNotExist) selects a pod with these labels."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def peer_matches(peers, ns, pod, pod_ns):
    if not peers:
        return True
    for p in peers:
        if "ipBlock" in p:
            continue  # pod addresses are not known here: no match
        if "namespaceSelector" in p:
            nsl = {"kubernetes.io/metadata.name": pod_ns}
            if not selects(p["namespaceSelector"], nsl):
                continue
        elif pod_ns != ns:
            continue
        if "podSelector" in p and not selects(p["podSelector"], pod):
            continue
        return True
    return False


def port_matches(ports, port, proto):
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != proto:
            continue
        if "port" not in p:
            return True
        end = p.get("endPort", p["port"])
        if isinstance(p["port"], int) and p["port"] <= port <= end:
            return True
    return False


def allowed(policies, src, dst, port, proto):
    """src, dst: (namespace, labels)."""
    for direction, me, other, key, peer_key in (
            ("Ingress", dst, src, "ingress", "from"),
            ("Egress", src, dst, "egress", "to")):
        mine = [p for p in policies
                if p["ns"] == me[0] and direction in p["types"]
                and selects(p["spec"].get("podSelector"), me[1])]
        if not mine:
            continue
        ok = False
        for p in mine:
            for rule in p["spec"].get(key) or []:
                if peer_matches(rule.get(peer_key), p["ns"], other[1],
                                other[0]) and port_matches(
                                    rule.get("ports"), port, proto):
                    ok = True
        if not ok:
            return False
    return True


def load(files):
    pods, policies = {}, []
    for f in files:
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if not d:
                    continue
                ns = d["metadata"].get("namespace", "default")
                if d["kind"] in WORKLOADS:
                    t = d["spec"]["template"]
                    ports = []
                    for c in t["spec"]["containers"]:
                        for p in c.get("ports") or []:
                            ports.append((p["containerPort"],
                                          p.get("protocol", "TCP")))
                    pods[d["metadata"]["name"]] = (
                        ns, t["metadata"].get("labels") or {}, ports)
                elif d["kind"] == "NetworkPolicy":
                    spec = d["spec"]
                    types = spec.get("policyTypes") or (
                        ["Ingress"] + (["Egress"] if "egress" in spec
                                       else []))
                    policies.append({"ns": ns, "spec": spec,
                                     "types": types})
    return pods, policies


def main():
    pods, policies = load(sys.argv[1:])
    out = []
    for a, (ans, alab, _) in pods.items():
        for b, (bns, blab, ports) in pods.items():
            if a == b:
                continue
            for port, proto in ports:
                ok = allowed(policies, (ans, alab), (bns, blab), port, proto)
                out.append(f"{a} {b} {port}/{proto.lower()} "
                           f"{'allow' if ok else 'deny'}")
    print("\n".join(sorted(out)))


if __name__ == "__main__":
    main()
