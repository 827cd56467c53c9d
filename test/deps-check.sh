#!/usr/bin/env bash
# Tests test/deps.sh in the states a fresh machine can be in (issue 12):
#   1. a Debian image that ships /usr/sbin/policy-rc.d (every Docker-derived
#      one) with a package missing: exit 0, the package installed, the
#      image's policy-rc.d untouched;
#   2. no policy-rc.d, a package missing: exit 0, installed, no policy-rc.d
#      left behind (deps.sh's own one, which keeps services from starting,
#      is removed again);
#   3. nothing missing: exit 0 without calling apt;
#   4. the check is not vacuous: deps.sh with the pre-fix EXIT trap
#      (`cleanup() { [ "$own_policy" = 1 ] && rm ...; }`) must fail case 1.
# The missing package is conntrack (small; removed and reinstalled twice).
# The policy-rc.d state and conntrack are restored on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "deps-check: must run as root (apt-get)" >&2; exit 1; }

policy=/usr/sbin/policy-rc.d
probe=conntrack
work=$(mktemp -d)
had_policy=0
if [ -e "$policy" ]; then
	had_policy=1
	cp -p "$policy" "$work/policy-rc.d.orig"
fi
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -qq -o DPkg::Lock::Timeout=300)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
restore() {
	if [ "$had_policy" = 1 ]; then
		cp -p "$work/policy-rc.d.orig" "$policy"
	else
		rm -f "$policy"
	fi
	installed "$probe" || apt-get install "${apt_opts[@]}" --no-install-recommends "$probe" >/dev/null
	rm -rf "$work"
}
trap restore EXIT
fail() { echo "deps-check: FAIL: $*" >&2; exit 1; }

remove_probe() {
	apt-get remove "${apt_opts[@]}" "$probe" >/dev/null 2>&1
	! installed "$probe" || fail "could not remove $probe to set up the test"
}

# run_deps SCRIPT LOG: runs a deps.sh, returns its exit status.
run_deps() {
	local rc=0
	bash "$1" >"$2" 2>&1 || rc=$?
	return $rc
}

marker="#!/bin/sh
# deps-check: an image's own policy-rc.d
exit 101"

t0=$(date +%s)
# 1. policy-rc.d present (foreign), a package missing.
printf '%s\n' "$marker" >"$policy"
chmod 755 "$policy"
remove_probe
rc=0; run_deps test/deps.sh "$work/1.log" || rc=$?
[ "$rc" = 0 ] || { cat "$work/1.log" >&2; fail "case 1 (policy-rc.d present, $probe missing): deps.sh exit $rc, want 0"; }
grep -q "installed:.* $probe\b" "$work/1.log" || { cat "$work/1.log" >&2; fail "case 1: deps.sh did not report installing $probe"; }
installed "$probe" || fail "case 1: $probe is still missing after deps.sh"
[ "$(cat "$policy" 2>/dev/null)" = "$marker" ] || fail "case 1: deps.sh changed or removed the image's $policy"
echo "deps-check: 1. policy-rc.d present, $probe missing: exit 0, installed, policy-rc.d kept ($(($(date +%s) - t0)) s)"

# 2. no policy-rc.d, a package missing.
t0=$(date +%s)
rm -f "$policy"
remove_probe
rc=0; run_deps test/deps.sh "$work/2.log" || rc=$?
[ "$rc" = 0 ] || { cat "$work/2.log" >&2; fail "case 2 (no policy-rc.d, $probe missing): deps.sh exit $rc, want 0"; }
installed "$probe" || fail "case 2: $probe is still missing after deps.sh"
[ ! -e "$policy" ] || fail "case 2: deps.sh left its $policy behind"
echo "deps-check: 2. no policy-rc.d, $probe missing: exit 0, installed, none left behind ($(($(date +%s) - t0)) s)"

# 3. nothing missing (with and without policy-rc.d).
for state in absent present; do
	[ "$state" = present ] && { printf '%s\n' "$marker" >"$policy"; chmod 755 "$policy"; }
	rc=0; run_deps test/deps.sh "$work/3.log" || rc=$?
	[ "$rc" = 0 ] || { cat "$work/3.log" >&2; fail "case 3 (nothing missing, policy-rc.d $state): exit $rc"; }
	grep -q "all test dependencies present" "$work/3.log" || { cat "$work/3.log" >&2; fail "case 3: deps.sh did not see that nothing is missing"; }
done
echo "deps-check: 3. nothing missing: exit 0, apt not called"

# 4. the pre-fix cleanup must fail case 1, or this check proves nothing.
# The bug is in the EXIT trap, not in apt, so this case runs with stand-ins
# for apt-get (does nothing) and dpkg-query (reports the probe missing): no
# second real install. The fixed deps.sh runs under the same stand-ins as
# the control.
t0=$(date +%s)
# The pre-fix cleanup (commit "deps.sh: exit 0 when policy-rc.d already
# existed"): a function whose last command is a false test returns 1, and an
# EXIT trap's failing function becomes the script's exit status.
awk '/^cleanup\(\) \{/ { skip = 1; print "cleanup() { [ \"$own_policy\" = 1 ] && rm -f \"$policy\"; }"; next }
	skip && /^\}/ { skip = 0; next } !skip { print }' test/deps.sh >"$work/deps-buggy.sh"
grep -qx 'cleanup() { \[ "$own_policy" = 1 \] && rm -f "$policy"; }' "$work/deps-buggy.sh" && grep -qx 'trap cleanup EXIT' "$work/deps-buggy.sh" ||
	fail "could not rebuild the pre-fix cleanup from test/deps.sh (its cleanup changed shape; update this check)"
stubs=$work/stubs
mkdir -p "$stubs"
printf '#!/bin/sh\necho "apt-get $*" >>"%s/apt.calls"\nexit 0\n' "$work" >"$stubs/apt-get"
printf '#!/bin/sh\nfor a; do [ "$a" = %s ] && { echo "unknown ok not-installed"; exit 0; }; done\nexec /usr/bin/dpkg-query "$@"\n' "$probe" >"$stubs/dpkg-query"
chmod 755 "$stubs"/*
printf '%s\n' "$marker" >"$policy"
chmod 755 "$policy"
rc=0; PATH=$stubs:$PATH run_deps test/deps.sh "$work/4a.log" || rc=$?
[ "$rc" = 0 ] || { cat "$work/4a.log" >&2; fail "case 4: the fixed deps.sh exits $rc under the stand-ins"; }
grep -q "install .*$probe" "$work/apt.calls" || fail "case 4: deps.sh did not reach apt-get install under the stand-ins"
rc=0; PATH=$stubs:$PATH run_deps "$work/deps-buggy.sh" "$work/4b.log" || rc=$?
[ "$rc" != 0 ] || fail "case 4: the pre-fix deps.sh exited 0 with policy-rc.d present: case 1 cannot detect the bug"
[ "$(cat "$policy")" = "$marker" ] || fail "case 4: policy-rc.d changed"
echo "deps-check: 4. with policy-rc.d present the pre-fix cleanup exits $rc, the fixed one 0: case 1 is a real check ($(($(date +%s) - t0)) s)"
echo "deps-check: OK"
