# SPDX-License-Identifier: MIT
# The dstack-p2p agent and CLI for users with docker:
#   docker build -t dstack-p2p .
# `make image` builds the trimmed equivalent here without docker (scripts/image.sh):
# the same binary and the same Debian packages (deploy/image/packages), minus what
# bookworm-slim adds around them (apt, bash, coreutils, ...).
#
# Runs as root only because it programs a WireGuard interface (NET_ADMIN); mount the
# dstack guest agent's socket (/var/run/dstack.sock). No simulator, no compilers.

FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
	make gcc libc6-dev pkg-config libmnl-dev libcurl4-openssl-dev libcurl3-gnutls libjsmn-dev \
	libsecp256k1-dev libssl-dev nettle-dev \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole context: .dockerignore keeps out everything but the sources, the Makefile,
# VERSION and the package list, so the Makefile's MODULES is the only list of modules.
COPY . .
# Without git in the build context the version is VERSION alone; to say the commit:
#   docker build --build-arg DSTACK_P2P_VERSION="$(make -s print-version)" .
ARG DSTACK_P2P_VERSION=
RUN make -j"$(nproc)" CFLAGS="-O2 -ffile-prefix-map=/src/=" \
	${DSTACK_P2P_VERSION:+VERSION="$DSTACK_P2P_VERSION"} build/dstack-p2p \
	&& strip --strip-all build/dstack-p2p

FROM debian:bookworm-slim
COPY deploy/image/packages /tmp/packages
RUN apt-get update \
	&& apt-get install -y --no-install-recommends $(grep -v '^#' /tmp/packages) \
	&& rm -rf /var/lib/apt/lists/* /tmp/packages /usr/share/doc /usr/share/man
COPY --from=build /src/build/dstack-p2p /usr/bin/dstack-p2p
# Healthy once this node is registered (the agent answers on its control socket).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
	CMD ["dstack-p2p", "wait", "--timeout", "5"]
CMD ["dstack-p2p", "agent"]
