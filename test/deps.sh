#!/bin/sh
# deps.sh installs what the netns tests, the demo and the benchmark need on a
# fresh Debian machine: strongSwan (charon + swanctl + kernel-libipsec, and the
# standard plugins with openssl and gcm, which --no-install-recommends skips), BIRD 2,
# iperf3, tshark, nftables, iproute2, ping, tcpdump, wireguard-tools (wg) and
# conntrack (sim.RebindNAT flushes the NAT's mappings), plus curl, file and procps
# (metrics scrape, docker-check, sysctl), which a minimal image may lack; for
# the packaging tests: lintian (the .deb), podman and buildah (`make image`,
# the container e2e), runc (hosts with hybrid cgroups, where crun refuses),
# libcap2-bin and util-linux (capsh, setpriv: cgwd without root), and
# systemd-analyze (the unit's security score; the systemd package only when
# it is missing: the command works offline, without a running systemd);
# for the benchmark's -lan-gro and -profile-drop: ethtool and iptables
# (perf, for -profile's syscall counts, is optional and not installed).
#
# It is idempotent: it asks dpkg what is missing, runs `apt-get update` at most
# once and only when something is missing, installs non-interactively and
# prints what it installed. It never starts system services: the simulator
# runs its own charon/bird instances inside network namespaces, so any unit
# the packages enable is stopped and disabled again.
set -eu

PKGS="strongswan-charon libstrongswan-standard-plugins libcharon-extra-plugins strongswan-swanctl bird2 iperf3 tshark nftables iproute2 iputils-ping tcpdump wireguard-tools conntrack curl file procps lintian podman buildah runc libcap2-bin util-linux man-db groff-base ethtool iptables"
command -v systemd-analyze >/dev/null 2>&1 || PKGS="$PKGS systemd"

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: must run as root (apt-get install)" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps.sh: all test dependencies present"
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting daemons (policy-rc.d is honoured by
# invoke-rc.d; deb-systemd-invoke honours it too). Removed again on exit.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
# The trap must succeed whether or not we created the file: under `set -e` a
# false `[ ... ] && ...` as the last command of the EXIT trap becomes the exit
# status of the whole script (a Docker-derived image ships policy-rc.d).
cleanup() {
	if [ "$own_policy" = 1 ]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT

# tshark asks whether non-root users may capture; answer "no" up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true

echo "deps.sh: installing:$missing"
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	$missing >/dev/null

# Packages may have enabled or started units; the simulator runs its own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	for u in strongswan-starter.service strongswan.service ipsec.service bird.service; do
		systemctl disable --now "$u" >/dev/null 2>&1 || true
	done
fi

echo "deps.sh: installed:$missing"
