#!/bin/bash
# fresh-check.sh proves the front door on a fresh machine: a fresh clone of
# HEAD in a clean Debian container that ships /usr/sbin/policy-rc.d (as every
# image derived from Docker's Debian base does) and has none of the test
# packages, where it runs what a new user runs: `make deps` (twice: the
# first installs, the second finds everything), `make build` and e2e tests
# against the simulated AWS side that need every package deps.sh installs
# (default: the console download imported with BGP and a ping; certificate
# mode, which loads charon's pkcs8/x509 plugins; IPv6 outside addresses;
# the two-gateway site with BIRD as on-premises router; raw ESP).
#
# Not part of `make test`: 21 minutes on the shared 2-core test machine (the
# image 3.5, make deps 3, a cold `make build` 11, the e2e test's build and
# run 2.5 for one test). Run it as root: `make fresh-check` (FRESH_TEST=regexp
# picks other e2e tests).
#
# The image: $FRESH_IMAGE if set (e.g. a local debian:bookworm), else
# localhost/cgw-fresh-debian:bookworm, built once with mmdebstrap (minbase,
# from this host's apt sources; no container registry is contacted) with
# policy-rc.d added. The README's build prerequisites come from the host, as
# a user brings them: Go (the toolchain, read-only, GOTOOLCHAIN=local) and the
# module cache (read-only, GOPROXY=off); `make` is installed with apt first.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
image=${FRESH_IMAGE:-localhost/cgw-fresh-debian:bookworm}
test_name=${FRESH_TEST:-TestImportedGenericConsolePath|TestCertBothTunnels|TestIPv6Outside|TestHAGateways|TestRawESP|TestMultiImportCookies}
fail() { echo "fresh-check: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (podman --privileged, network namespaces)"
command -v podman >/dev/null || fail "podman is missing (make deps)"
command -v go >/dev/null || fail "go is missing: the README's Go toolchain is taken from the host"
goroot=$(go env GOROOT)
modcache=$(go env GOMODCACHE)

if ! podman image exists "$image"; then
	[ -z "${FRESH_IMAGE:-}" ] || fail "FRESH_IMAGE=$image is not a local image"
	if ! command -v mmdebstrap >/dev/null; then
		echo "fresh-check: installing mmdebstrap (builds the image from this host's apt sources)"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
			fail "no $image, and mmdebstrap could not be installed: set FRESH_IMAGE to a local Debian image"
	fi
	echo "fresh-check: building $image with mmdebstrap (minbase bookworm, this host's apt sources)"
	tar=$(mktemp --suffix=.tar)
	trap 'rm -f "$tar"' EXIT
	mmdebstrap --quiet --variant=minbase --include=ca-certificates \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
		bookworm "$tar"
	# mmdebstrap removes its own policy-rc.d after the hooks; add Docker's.
	stage=$(mktemp -d)
	mkdir -p "$stage/usr/sbin"
	printf '#!/bin/sh\nexit 101\n' >"$stage/usr/sbin/policy-rc.d"
	chmod 755 "$stage/usr/sbin/policy-rc.d"
	tar --owner=0 --group=0 -rf "$tar" -C "$stage" ./usr/sbin/policy-rc.d
	rm -rf "$stage"
	podman import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$image" >/dev/null
	rm -f "$tar"
	trap - EXIT
fi

work=$(mktemp -d /tmp/cgw-fresh.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone --quiet --no-hardlinks "$here" "$work/src"
echo "fresh-check: $(git -C "$work/src" log --oneline -1) in $image"

# What runs inside, as a new user would after `git clone`.
cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
step() { printf '\nfresh-check: ---- %s\n' "$*"; }
step "the image: policy-rc.d present, no test package installed"
test -x /usr/sbin/policy-rc.d || { echo "no /usr/sbin/policy-rc.d in the image"; exit 1; }
for p in strongswan-charon bird2 make; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		echo "$p is already installed: not a fresh image"; exit 1
	fi
done
echo ok
step "apt-get install make (the README's prerequisite, with Go)"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make >/dev/null
step "make deps (installs the test packages)"
start=$(date +%s)
make deps
echo "make deps: exit 0 after $(( $(date +%s) - start ))s"
test -x /usr/sbin/policy-rc.d || { echo "deps.sh removed the image's policy-rc.d"; exit 1; }
step "make deps again (nothing missing)"
make deps
step "make build"
start=$(date +%s)
make build
echo "make build: $(( $(date +%s) - start ))s"
step "e2e: $FRESH_TEST"
rc=0
CGW_BIN=$PWD/bin go test -count=1 -tags e2e -run "^($FRESH_TEST)\$" -v ./test/e2e/ >/tmp/e2e.log 2>&1 || rc=$?
grep -E '^(=== RUN|--- |PASS|FAIL|ok )|e2e: ' /tmp/e2e.log || true
if [ "$rc" != 0 ]; then
	tail -60 /tmp/e2e.log
	echo "e2e: exit $rc"
	exit 1
fi
EOF

# Engine flags this host needs (as TestContainerImage's engineQuirks): in a
# sandbox without CAP_SYS_RESOURCE podman's default rlimits cannot be set,
# and with hybrid cgroups crun refuses where runc runs.
nofile=$(ulimit -n)
quirks=()
for q in "" "--ulimit nofile=$nofile:$nofile --ulimit nproc=4096:4096" "--runtime runc --ulimit nofile=$nofile:$nofile --ulimit nproc=4096:4096"; do
	# shellcheck disable=SC2086
	if podman run --rm --privileged --network host $q "$image" true >/dev/null 2>&1; then
		read -ra quirks <<<"$q"
		break
	fi
	[ -n "$q" ] || continue
	[ "$q" != "${q#--runtime}" ] && fail "podman cannot run $image here (tried default, --ulimit and --runtime runc)"
done

podman run --rm --privileged --network host "${quirks[@]}" \
	-v "$work/src:/src" -v "$work/inside.sh:/inside.sh:ro" \
	-v "$goroot:/usr/local/go:ro" -v "$modcache:/gomod:ro" \
	-e GOMODCACHE=/gomod -e GOPROXY=off -e GOFLAGS=-mod=readonly -e GOTOOLCHAIN=local \
	-e PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	-e FRESH_TEST="$test_name" -w /src "$image" bash /inside.sh
echo "fresh-check: passed"
