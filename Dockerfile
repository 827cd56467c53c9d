# syntax=docker/dockerfile:1
# cgw: userspace IKEv2/IPsec customer gateway for AWS Site-to-Site VPN.
#
#   docker build -t cgw .            (or: podman build -t cgw .)
#   podman run -d --name cgw --network host \
#     --cap-drop ALL --cap-add NET_ADMIN,NET_BIND_SERVICE --device /dev/net/tun \
#     -v /etc/cgw:/etc/cgw:ro cgw
#
# The runtime stage below is deploy/container/Containerfile.runtime with the
# binaries taken from the build stage; `make image` builds that file from the
# binaries of `make build` (no registry pull), and `make test` runs the image
# against the simulated AWS side. test/dockerfile-check.sh keeps both equal.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/cgwproject/cgw/internal/version.v=${VERSION}" \
      -o /out/ ./cmd/cgwd ./cmd/cgwctl \
 && mkdir -p /out/run/cgw \
 && { command -v setcap >/dev/null || { apt-get update && apt-get install -y --no-install-recommends libcap2-bin; }; } \
 && setcap cap_net_admin,cap_net_bind_service+ep /out/cgwd

FROM scratch
ARG VERSION=devel
LABEL org.opencontainers.image.title="cgw" \
      org.opencontainers.image.description="userspace IKEv2/IPsec customer gateway for AWS Site-to-Site VPN" \
      org.opencontainers.image.source="https://github.com/cgwproject/cgw" \
      org.opencontainers.image.version="${VERSION}"
COPY deploy/container/passwd deploy/container/group /etc/
COPY --from=build /out/cgwd /out/cgwctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/run /run
# Needs CAP_NET_ADMIN (TUN, routes) and CAP_NET_BIND_SERVICE (UDP 500, TCP 179)
# and /dev/net/tun; see README "Least privilege".
USER 65532:65532
# IKE and NAT-T/ESP-in-UDP (BGP runs inside the tunnels).
EXPOSE 500/udp 4500/udp
VOLUME ["/etc/cgw"]
ENTRYPOINT ["/usr/local/bin/cgwd"]
CMD ["--config", "/etc/cgw/cgw.yaml"]
