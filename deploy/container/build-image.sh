#!/usr/bin/env bash
# Builds the cgw runtime image (Containerfile.runtime, FROM scratch: no
# registry pull) from the static binaries in BINDIR, with podman or buildah.
#   deploy/container/build-image.sh BINDIR VERSION TAG...
# Used by `make image` and by the container e2e test.
set -euo pipefail
bin=$1 version=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
for b in cgwd cgwctl; do
	file -L "$bin/$b" | grep -q 'statically linked' ||
		{ echo "build-image: $bin/$b is not a static binary (build with CGO_ENABLED=0: make build)" >&2; exit 1; }
done
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin/cgwd" "$bin/cgwctl" "$here/passwd" "$here/group" "$ctx/"
# File capabilities, so that a non-root cgwd gets exactly these two where the
# engine grants added capabilities only to root (Docker, containerd, i.e.
# Kubernetes); podman also passes them as ambient capabilities. The
# container must be given both (--cap-add / capabilities.add), and must not
# set no-new-privileges (Kubernetes: allowPrivilegeEscalation: true).
setcap cap_net_admin,cap_net_bind_service+ep "$ctx/cgwd"
# /run/cgw owned by cgw, for the control socket.
mkdir -p "$ctx/run/cgw"
tags=()
for t in "$@"; do tags+=(-t "$t"); done
if command -v "${PODMAN:-podman}" >/dev/null 2>&1; then
	"${PODMAN:-podman}" build --pull=never -q -f "$here/Containerfile.runtime" \
		--build-arg VERSION="$version" "${tags[@]}" "$ctx"
else
	buildah bud --pull=never -q -f "$here/Containerfile.runtime" \
		--build-arg VERSION="$version" "${tags[@]}" "$ctx"
fi
