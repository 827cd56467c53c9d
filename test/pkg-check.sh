#!/usr/bin/env bash
# Packaging checks (issue 12), run by `make test` after `make build`:
#   1. make install DESTDIR=<tmp>: exactly the expected files, modes and
#      owners; the unit points at the installed cgwd; the man pages render
#      without warnings and list every cgwctl command; the bash completion
#      completes commands;
#   2. the systemd unit's `systemd-analyze security --offline=yes` exposure
#      is at most 3.0;
#   3. make deb: lintian reports no error; installing it creates the system
#      user cgw and /etc/cgw (cgw, 0700); purging it removes the package;
#   4. the Kubernetes manifest decodes strictly into the API types, and the
#      cgw.yaml it embeds passes cgwctl config check.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "pkg-check: FAIL: $*" >&2; exit 1; }
step() { echo "pkg-check: $*"; }
bin=${CGW_BIN:-$PWD/bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)

# 1. make install into a temporary root.
root=$work/root
make --no-print-directory install DESTDIR="$root" PREFIX=/usr/local >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; fail "make install failed"; }
want="drwx------ root:root /etc/cgw
-rwxr-xr-x root:root /usr/local/bin/cgwctl
-rwxr-xr-x root:root /usr/local/bin/cgwd
-rw-r--r-- root:root /usr/local/lib/systemd/system/cgwd.service
-rw-r--r-- root:root /usr/local/lib/sysusers.d/cgw.conf
-rw-r--r-- root:root /usr/local/share/bash-completion/completions/cgwctl
-rw-r--r-- root:root /usr/local/share/bash-completion/completions/cgwd
-rw-r--r-- root:root /usr/local/share/man/man5/cgw.yaml.5
-rw-r--r-- root:root /usr/local/share/man/man8/cgwctl.8
-rw-r--r-- root:root /usr/local/share/man/man8/cgwd.8
-rw-r--r-- root:root /usr/local/share/zsh/site-functions/_cgwctl
-rw-r--r-- root:root /usr/local/share/zsh/site-functions/_cgwd"
got=$(cd "$root" && find . \( -type f -o -type l -o -path ./etc/cgw \) -printf '%M %u:%g /%P\n' | sort -k3)
[ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got") >&2 || true; fail "make install: files, modes or owners differ (< want, > got)"; }
# Every directory make install created is 0755 root, except /etc/cgw.
bad=$(cd "$root" && find . -mindepth 1 -type d ! -path ./etc/cgw ! \( -perm 0755 -user root -group root \) -printf '%M %u:%g /%P\n')
[ -z "$bad" ] || fail "make install: unexpected directory modes: $bad"
cmp -s "$root/usr/local/bin/cgwd" "$bin/cgwd" || fail "installed cgwd differs from $bin/cgwd"
grep -qx 'ExecStart=/usr/local/bin/cgwd --config /etc/cgw/cgw.yaml' "$root/usr/local/lib/systemd/system/cgwd.service" ||
	fail "the installed unit does not run /usr/local/bin/cgwd"
for p in man8/cgwd.8 man8/cgwctl.8 man5/cgw.yaml.5; do
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$root/usr/local/share/man/$p" 2>&1 >"$work/page.txt") || fail "man $p: $w"
	[ -z "$w" ] || fail "man $p warns: $w"
	[ "$(wc -l <"$work/page.txt")" -gt 20 ] || fail "man $p is nearly empty"
done
# cgwctl(8) has every command `cgwctl -h` lists; cgw.yaml(5) every key of
# the default configuration.
"$bin/cgwctl" -h | awk '/^commands:/ {c=1; next} /^$/ {c=0} c && /^  [a-z]/ {print $1" "$2}' |
	while read -r a b; do
		cmd=$a; [[ $b =~ ^[a-z][a-z-]*$ ]] && cmd="$a $b"
		MANWIDTH=200 man -l "$root/usr/local/share/man/man8/cgwctl.8" 2>/dev/null | grep -q "cgwctl $cmd" || fail "cgwctl(8) lacks 'cgwctl $cmd'"
	done
for key in psk_file inside_cidr ike_lifetime dpd.interval advertise_kernel oversize; do
	MANWIDTH=200 man -l "$root/usr/local/share/man/man5/cgw.yaml.5" 2>/dev/null | grep -q -- "$key" || fail "cgw.yaml(5) lacks $key"
done
# The bash completion completes nouns, verbs and flags.
comp() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cgwctl; echo "${COMPREPLY[*]}"' _ \
		"$root/usr/local/share/bash-completion/completions/cgwctl" "$@"
}
[ "$(comp cgwctl tu)" = tunnel ] || fail "bash completion: 'cgwctl tu' -> '$(comp cgwctl tu)', want tunnel"
[[ " $(comp cgwctl tunnel '') " == *" rekey "* ]] || fail "bash completion: 'cgwctl tunnel ' lacks rekey"
[[ " $(comp cgwctl status --j) " == *" --json "* ]] || fail "bash completion: 'cgwctl status --j' lacks --json"
grep -q '^#compdef cgwctl' "$root/usr/local/share/zsh/site-functions/_cgwctl" || fail "zsh completion lacks #compdef"
if command -v zsh >/dev/null; then zsh -n "$root/usr/local/share/zsh/site-functions/_cgwctl" || fail "zsh completion: syntax"; fi
step "1. make install: $(echo "$want" | wc -l) files, modes and owners as expected; man pages and completion OK ($(($(date +%s) - t0)) s)"

# 2. systemd-analyze security of the unit as installed.
t0=$(date +%s)
score=$(systemd-analyze security --offline=yes "$root/usr/local/lib/systemd/system/cgwd.service" 2>&1 |
	sed -n 's/.*Overall exposure level for cgwd.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "systemd-analyze printed no exposure level"
awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }' || fail "systemd-analyze security: exposure $score > 3.0"
step "2. systemd-analyze security --offline=yes cgwd.service: $score (<= 3.0) ($(($(date +%s) - t0)) s)"

# 3. The Debian package.
t0=$(date +%s)
deb=$(make --no-print-directory deb DIST="$work/dist" | tail -1)
[ -f "$deb" ] || fail "make deb produced no package ($deb)"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/cgwd ./usr/bin/cgwctl ./lib/systemd/system/cgwd.service ./usr/lib/sysusers.d/cgw.conf \
	./usr/share/man/man8/cgwd.8.gz ./usr/share/man/man8/cgwctl.8.gz ./usr/share/man/man5/cgw.yaml.5.gz \
	./usr/share/bash-completion/completions/cgwctl ./usr/share/zsh/vendor-completions/_cgwctl \
	./usr/share/doc/cgw/copyright ./etc/cgw/; do
	grep -q " $f\$" <<<"$contents" || fail "the .deb lacks $f"
done
grep -q '^drwx------ root/root .* ./etc/cgw/$' <<<"$contents" || fail "the .deb's /etc/cgw is not 0700 root"
lintian --fail-on error --display-info "$deb" >"$work/lintian.txt" 2>&1 || { cat "$work/lintian.txt" >&2; fail "lintian reports errors"; }
grep -v '^running with root privileges' "$work/lintian.txt" | sed 's/^/pkg-check:    lintian: /' || true
if dpkg-query -W -f='${Status}' cgw 2>/dev/null | grep -q "install ok installed"; then
	step "3. (cgw is installed on this machine; not installing the test package over it)"
else
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$deb" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "installing the .deb failed"; }
	purge() { apt-get purge -y -qq -o DPkg::Lock::Timeout=300 cgw >/dev/null 2>&1; }
	trap 'purge; rm -rf "$work"' EXIT
	uid=$(getent passwd cgw | cut -d: -f3)
	[ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "the .deb did not create a system user cgw (uid '$uid')"
	[ "$(stat -c '%U:%G %a' /etc/cgw)" = "cgw:cgw 700" ] || fail "/etc/cgw after install: $(stat -c '%U:%G %a' /etc/cgw), want cgw:cgw 700"
	/usr/bin/cgwd --version | grep -q '^cgwd ' || fail "/usr/bin/cgwd --version"
	man -w cgw.yaml >/dev/null 2>&1 || fail "man cgw.yaml does not find the installed page"
	purge
	! dpkg-query -W -f='${Status}' cgw 2>/dev/null | grep -q "install ok installed" || fail "purging the .deb failed"
	trap 'rm -rf "$work"' EXIT
fi
step "3. make deb: $(basename "$deb"), lintian: no errors; install created user cgw (uid $uid) and /etc/cgw cgw:cgw 0700; purged ($(($(date +%s) - t0)) s)"

# 4. Kubernetes manifest.
t0=$(date +%s)
(cd deploy/kubernetes/validate && CGW_K8S_CONFIG_OUT="$work/k8s-cgw.yaml" go test -count=1 ./...) || fail "the Kubernetes manifest does not validate"
mkdir -p "$work/psk" && printf 'EXAMPLEpsk1_abcdefghij.klmnopqrs' >"$work/psk/t1.psk" && printf 'EXAMPLEpsk2_abcdefghij.klmnopqrs' >"$work/psk/t2.psk"
chmod 600 "$work"/psk/*.psk
sed "s|/etc/cgw/psk/|$work/psk/|" "$work/k8s-cgw.yaml" >"$work/k8s-check.yaml"
"$bin/cgwctl" config check "$work/k8s-check.yaml" || fail "the ConfigMap's cgw.yaml does not pass cgwctl config check"
step "4. Kubernetes manifest: strict decoding and policy checks pass; its cgw.yaml is valid ($(($(date +%s) - t0)) s)"
step OK
