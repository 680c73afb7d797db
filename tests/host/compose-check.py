# SPDX-License-Identifier: MIT
"""Checks docker compose files for dstack-p2p without docker: YAML syntax, then what
`docker compose config` would refuse (undeclared volumes, unknown services in depends_on
or network_mode, bare $ that compose would interpolate), then what the agent needs:
NET_ADMIN, the guest agent's socket, only environment names the agent reads (taken from
the C source, not a list kept here), a startup gate with no deadline sharing the control
socket's volume, agent and app on host networking (an agent restart never strands the
app), and the ports of the transport it runs.

Usage: /usr/bin/python3 compose-check.py SOURCE_ROOT FILE...   (exit 1 on a problem)
Debian's python3 and python3-yaml only.
"""
import os
import re
import sys

import yaml

GATE_CONDITION = "service_completed_successfully"
CONDITIONS = {"service_started", "service_healthy", GATE_CONDITION}
TOP_KEYS = {"services", "volumes", "networks", "configs", "secrets", "name", "version"}


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def agent_names(root):
    """Every environment name the agent reads: mesh_config_names in mesh/config.c, plus
    each getenv() of the C sources, with a macro argument resolved from its #define."""
    config = read(root, "mesh/config.c")
    m = re.search(r"mesh_config_names\[\]\s*=\s*\{(.*?)NULL", config, re.S)
    if not m:
        raise SystemExit("compose-check: no mesh_config_names in mesh/config.c")
    names = set(re.findall(r'"([A-Z0-9_]+)"', m.group(1)))
    defines, calls = {}, set()
    for folder in ("common", "chain", "attest", "netlink", "mesh", "api", "cli"):
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            if os.path.basename(dirpath) == "sim":
                continue  # the simulator is not in the image
            for name in files:
                if not name.endswith((".c", ".h")):
                    continue
                text = read(root, os.path.join(dirpath, name))
                defines.update(re.findall(r'#define\s+([A-Z0-9_]+)\s+"([A-Z0-9_]+)"', text))
                calls.update(re.findall(r"getenv\(\s*([A-Za-z0-9_\"]+)\s*\)", text))
    for arg in calls:
        if arg.startswith('"'):
            names.add(arg.strip('"'))
        elif arg in defines:
            names.add(defines[arg])
    return names


def c_define(root, header, name, default):
    m = re.search(r"#define\s+%s\s+(\S+)" % name, read(root, header))
    if not m:
        return default
    return m.group(1).strip('"')


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def mounts(service):
    """(source, target) of each volume, short or long syntax."""
    out = []
    for v in as_list(service.get("volumes")):
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v.get("target", ""))))
        else:
            parts = str(v).split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
    return out


def named(source):
    return bool(source) and not source.startswith(("/", ".", "~", "$"))


def command_of(service):
    cmd = service.get("command")
    return cmd if isinstance(cmd, list) else str(cmd or "").split()


def published(service):
    """(container port, protocol) of each published port, short syntax."""
    out = set()
    for p in as_list(service.get("ports")):
        if isinstance(p, dict):
            out.add((int(p["target"]), p.get("protocol", "tcp")))
            continue
        spec, _, proto = str(p).partition("/")
        out.add((int(spec.split(":")[-1]), proto or "tcp"))
    return out


def walk_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(k)
            yield from walk_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v)


BARE_DOLLAR = re.compile(r"(?<!\$)\$(?![${])(?=[A-Za-z_(])")


def check(root, path, known, problems):
    def bad(msg):
        problems.append("%s: %s" % (path, msg))

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        bad("not YAML: %s" % e)
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        bad("no services")
        return
    for key in doc:
        if key not in TOP_KEYS and not str(key).startswith("x-"):
            bad("unknown top-level key '%s'" % key)
    services = doc["services"]
    declared = set((doc.get("volumes") or {}).keys())
    for s in walk_strings(doc):
        if BARE_DOLLAR.search(s):
            bad("bare '$' compose would interpolate (write $$): %r" % s[:60])
    for name, svc in services.items():
        if not isinstance(svc, dict) or not svc.get("image"):
            bad("service '%s' has no image" % name)
            continue
        if "$" in str(svc["image"]):
            bad("service '%s' takes its image from the environment: the compose hash "
                "would not cover which image runs" % name)
        for source, _ in mounts(svc):
            if named(source) and source not in declared:
                bad("service '%s' mounts volume '%s' that is not declared" % (name, source))
        deps = svc.get("depends_on") or {}
        for dep, how in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            if dep not in services:
                bad("service '%s' depends on unknown '%s'" % (name, dep))
            cond = (how or {}).get("condition", "service_started")
            if cond not in CONDITIONS:
                bad("service '%s': unknown depends_on condition '%s'" % (name, cond))
        mode = str(svc.get("network_mode", ""))
        if mode.startswith("service:") and mode[8:] not in services:
            bad("service '%s' joins the network of unknown '%s'" % (name, mode[8:]))
        if mode.startswith("service:") and svc.get("ports"):
            bad("service '%s' publishes ports but shares another's network" % name)

    agents = [n for n, s in services.items() if command_of(s)[:2] == ["dstack-p2p", "agent"]]
    gates = [n for n, s in services.items() if command_of(s)[:2] == ["dstack-p2p", "wait"]]
    if len(agents) != 1:
        bad("%d services run 'dstack-p2p agent' (want 1)" % len(agents))
        return
    agent = services[agents[0]]
    env = env_of(agent)
    for k in env:
        if k not in known:
            bad("agent environment '%s' is not a variable the agent reads" % k)
    for k in ("CLUSTER_CONTRACT", "ETH_RPC_URL"):
        if not env.get(k):
            bad("agent environment lacks %s" % k)
    contract = env.get("CLUSTER_CONTRACT") or ""
    if contract and not re.fullmatch(r"0x[0-9a-fA-F]{40}|\$\{[A-Z0-9_]+\}", contract):
        bad("CLUSTER_CONTRACT '%s' is neither an address nor ${VAR}" % contract)
    if "NET_ADMIN" not in as_list(agent.get("cap_add")):
        bad("agent lacks cap_add NET_ADMIN (WireGuard)")
    if agent.get("privileged"):
        bad("agent is privileged: NET_ADMIN is all it needs")
    targets = {t: s for s, t in mounts(agent)}
    if not ({"/var/run/dstack.sock", "/run/dstack.sock"} & set(targets)):
        bad("agent does not mount the guest agent's socket")

    control_dir = os.path.dirname(env.get("DSTACK_P2P_CONTROL") or c_define(
        root, "mesh/mesh.h", "MESH_DEFAULT_CONTROL", "/run/dstack-p2p/control.sock"))
    volume = targets.get(control_dir)
    if not named(volume or ""):
        bad("agent's control socket folder %s is not on a named volume" % control_dir)
    if not gates:
        bad("no startup gate ('dstack-p2p wait')")
    for g in gates:
        gate = services[g]
        if (volume, control_dir) not in [(s, t) for s, t in mounts(gate)]:
            bad("gate '%s' does not mount volume '%s' at %s" % (g, volume, control_dir))
        if str(gate.get("restart", "no")) not in ("no", "on-failure"):
            bad("gate '%s' restarts after it succeeds: it never completes" % g)
        cmd = command_of(gate)
        if "--timeout" not in cmd or cmd[cmd.index("--timeout") + 1:][:1] != ["never"]:
            bad("gate '%s' has a deadline (want --timeout never): compose never runs it "
                "again, so a node bound later never starts its app" % g)
    gated = [n for n, s in services.items()
             if isinstance(s.get("depends_on"), dict)
             and any((s["depends_on"].get(g) or {}).get("condition") == GATE_CONDITION for g in gates)]
    if not gated:
        bad("no service waits for the gate with condition %s" % GATE_CONDITION)
    # The layout that survives an agent restart: agent and app on the CVM's namespace.
    # A restarted container gets a new namespace; one that joined it stays in the old.
    for n, s in services.items():
        if str(s.get("network_mode", "")) == "service:" + agents[0]:
            bad("service '%s' joins the agent's network namespace: a restarted agent gets a "
                "new one and strands '%s' (docker/compose#6626); use network_mode: host" % (n, n))
    if agent.get("network_mode") != "host":
        bad("agent not on network_mode: host (the CVM's namespace, which outlives it)")
    for n in gated:
        if services[n].get("network_mode") != "host":
            bad("app '%s' not on network_mode: host: it does not see the WireGuard interface" % n)
    peers = env.get("P2P_PEERS_FILE")
    if peers:
        pdir = os.path.dirname(peers)
        if not named(targets.get(pdir, "")):
            bad("peers file folder %s is not on a named volume" % pdir)
        elif not any((targets[pdir], pdir) in [(s, t.split(":")[0]) for s, t in mounts(services[n])]
                     for n in gated):
            bad("no gated app mounts the peers file's volume at %s" % pdir)

    transport = env.get("P2P_TRANSPORT", "udp")
    ports = published(agent)
    host_net = agent.get("network_mode") == "host"
    if transport in ("gateway", "auto"):
        relay = int(env.get("P2P_RELAY_PORT") or c_define(root, "mesh/mesh.h", "MESH_DEFAULT_RELAY_PORT", "51831"))
        if not host_net and (relay, "tcp") not in ports:
            bad("gateway transport: TCP %d (the tunnel port) is not published" % relay)
        if "/dstack" not in targets and not env.get("DSTACK_GATEWAY_DOMAIN"):
            bad("gateway transport: /dstack not mounted and no DSTACK_GATEWAY_DOMAIN")
    if transport in ("udp", "auto"):
        listen = int(env.get("P2P_LISTEN_PORT") or c_define(root, "mesh/mesh.h", "MESH_DEFAULT_PORT", "51830"))
        if not host_net and (listen, "udp") not in ports:
            bad("UDP transport: UDP %d is not published" % listen)
    elif transport != "gateway":
        bad("P2P_TRANSPORT '%s' is not udp, gateway or auto" % transport)
    # The files' own promises: Phala Cloud has no inbound UDP.
    base = os.path.basename(path)
    if "phala" in base and transport != "gateway" and transport != "auto":
        bad("a Phala Cloud file must use the gateway transport")
    if "self-hosted" in base and transport == "gateway":
        bad("the self-hosted file is the UDP one")


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    root, files = argv[1], argv[2:]
    known = agent_names(root)
    problems = []
    for path in files:
        before = len(problems)
        check(root, path, known, problems)
        if len(problems) == before:
            print("compose-check: %s ok" % path)
    for p in problems:
        print("compose-check: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
