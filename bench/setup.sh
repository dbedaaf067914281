#!/usr/bin/env bash
# Installs the peers the benchmarks compare wakeport with, from Debian:
# xinetd, ucspi-tcp (tcpserver), socat, systemd's systemd-socket-activate,
# and wrk (to cross-check autocannon). openbsd-inetd conflicts with xinetd as
# a package, so its .deb is only unpacked into bench/.peers/. Services these
# packages would start at install are kept from starting; the benchmarks run
# each peer themselves, on loopback ports of their own.
set -euo pipefail
packages=(xinetd ucspi-tcp socat systemd wrk)
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  made_policy=yes
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${packages[@]}" \
  || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${packages[@]}"; }
[ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d

peers="$(cd "$(dirname "$0")" && pwd)/.peers"
mkdir -p "$peers"
(cd "$peers" && apt-get download openbsd-inetd >/dev/null && dpkg-deb -x openbsd-inetd_*.deb openbsd-inetd && rm -f openbsd-inetd_*.deb)
echo "openbsd-inetd unpacked: $peers/openbsd-inetd/usr/sbin/inetd"
