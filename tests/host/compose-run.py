# SPDX-License-Identifier: MIT
"""Translates one service of a docker compose file into `podman run` arguments, the way
docker compose would run it, for tests/host/test-compose-restart.sh.

Usage: /usr/bin/python3 compose-run.py FILE SERVICE [OPTION...]
  --name-prefix P     containers are named P<service>
  --netns PATH        what network_mode: host means here (a harness node's namespace)
  --image REF=ID      run ID where the file says image REF
  --volume NAME=DIR   the named volume NAME is the host folder DIR
  --bind SRC=DIR      a host path the file mounts (SRC) is DIR here
  --var NAME=VALUE    the value of ${NAME} (the CVM's environment)
  --set NAME=VALUE    this service's environment NAME is VALUE (added or replaced)
  --extra ARG         one more podman run argument (before the image)
  --gate-divisor N    a `dstack-p2p wait --timeout S` runs with ceil(S/N): the knob that
                      brings a deadline of minutes into a test's seconds

Prints the arguments NUL-separated, after `podman run -d`. network_mode: host joins
--netns, service:S joins S's container, none or nothing gets a namespace of the
container's own (new at every start, as docker's bridge network gives; ports are not
modelled). healthcheck and depends_on are left to the caller. Debian's python3-yaml.
"""
import math
import re
import sys

import yaml

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")


def pairs(values):
    return dict(v.split("=", 1) for v in values)


def interpolate(text, variables):
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        if m.group(1) not in variables:
            raise SystemExit("compose-run: ${%s} has no value (--var)" % m.group(1))
        return variables[m.group(1)]
    return VAR.sub(sub, str(text))


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, name = argv[1], argv[2]
    opts = {"--name-prefix": [], "--netns": [], "--image": [], "--volume": [], "--bind": [],
            "--var": [], "--set": [], "--extra": [], "--gate-divisor": []}
    rest = argv[3:]
    if len(rest) % 2:
        raise SystemExit("compose-run: option %s without a value" % rest[-1])
    for k, v in zip(rest[::2], rest[1::2]):
        if k not in opts:
            raise SystemExit("compose-run: unknown option %s" % k)
        opts[k].append(v)
    prefix = (opts["--name-prefix"] or [""])[-1]
    images, volumes, binds = pairs(opts["--image"]), pairs(opts["--volume"]), pairs(opts["--bind"])
    variables = pairs(opts["--var"])
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    svc = doc["services"][name]
    out = ["--name", prefix + name]

    mode = str(svc.get("network_mode", "none"))
    if mode == "host":
        if not opts["--netns"]:
            raise SystemExit("compose-run: %s uses host networking: give --netns" % name)
        out.append("--network=ns:" + opts["--netns"][-1])
    elif mode.startswith("service:"):
        out.append("--network=container:" + prefix + mode[8:])
    elif mode in ("none", "bridge", "default"):
        out.append("--network=none")
    else:
        raise SystemExit("compose-run: network_mode %s not modelled" % mode)

    for cap in svc.get("cap_add") or []:
        out.append("--cap-add=" + cap)
    restart = str(svc.get("restart", "no"))
    out.append("--restart=" + restart)

    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    env = {k: interpolate(v, variables) for k, v in env.items()}
    env.update(pairs(opts["--set"]))
    for k, v in env.items():
        out.append("--env=%s=%s" % (k, v))

    for v in svc.get("volumes") or []:
        parts = str(v).split(":")
        src, dst = parts[0], parts[1]
        ro = ":ro" if parts[2:] == ["ro"] else ""
        if src.startswith("/"):
            if src not in binds:
                raise SystemExit("compose-run: host path %s has no --bind" % src)
            src = binds[src]
        elif src not in volumes:
            raise SystemExit("compose-run: volume %s has no --volume" % src)
        else:
            src = volumes[src]
        out.append("--volume=%s:%s%s" % (src, dst, ro))

    out += opts["--extra"]
    image = str(svc["image"])
    out.append(images.get(image, image))
    cmd = svc.get("command") or []
    cmd = [interpolate(c, variables) for c in (cmd if isinstance(cmd, list) else str(cmd).split())]
    if cmd[:2] == ["dstack-p2p", "wait"] and opts["--gate-divisor"] and "--timeout" in cmd:
        i = cmd.index("--timeout") + 1
        if cmd[i] != "never":
            cmd[i] = str(math.ceil(int(cmd[i]) / int(opts["--gate-divisor"][-1])))
    out += cmd
    sys.stdout.write("\0".join(out) + "\0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
