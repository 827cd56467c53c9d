#!/usr/bin/env bash
# Builds dist/cgw_<version>_<arch>.deb (a native package) with dpkg-deb from `make install`
# into a staging root (PREFIX=/usr, Debian's unit and completion paths),
# plus the Debian metadata in deploy/debian. Usage:
#   deploy/debian/build-deb.sh VERSION OUTDIR
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$1 out=$2
# Debian versions must start with a digit: v1.2.3 -> 1.2.3; an untagged
# checkout (git describe --always: a bare hash) -> 0.0~git<date>.<hash>.
if [[ $version =~ ^v?([0-9].*)$ && ! $version =~ ^[0-9a-f]{7,}(-dirty)?$ ]]; then
	debver=${BASH_REMATCH[1]}
else
	debver="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).${version}"
fi
debver=${debver//-/.}
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage" "$stage.bin"' EXIT
make --no-print-directory install GOLDFLAGS="-s -w" BIN="$stage.bin" DESTDIR="$stage" PREFIX=/usr UNITDIR=/lib/systemd/system \
	ZSHCOMPDIR=/usr/share/zsh/vendor-completions SYSUSERSDIR=/usr/lib/sysusers.d >/dev/null
gzip -9n "$stage"/usr/share/man/man*/*
doc=$stage/usr/share/doc/cgw
install -d -m 0755 "$doc"
install -m 0644 deploy/debian/copyright "$doc/copyright"
{
	printf 'cgw (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n' "$debver" "$version"
	printf ' -- cgw maintainers <maintainers@users.noreply.h-seed-5135ac51.example>  %s\n' \
		"$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
install -d -m 0755 "$stage/usr/share/lintian/overrides"
install -m 0644 deploy/debian/lintian-overrides "$stage/usr/share/lintian/overrides/cgw"
install -d -m 0755 "$stage/DEBIAN"
install -m 0755 deploy/debian/postinst deploy/debian/postrm "$stage/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$debver/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" deploy/debian/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
mkdir -p "$out"
deb=$out/cgw_${debver}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
