# syntax=docker/dockerfile:1
# cgw: userspace IKEv2/IPsec customer gateway for AWS Site-to-Site VPN.
#
#   docker build -t cgw .
#   docker run --cap-add NET_ADMIN --device /dev/net/tun \
#     -p 500:500/udp -p 4500:4500/udp -p 9810:9810 \
#     -v /etc/cgw:/etc/cgw:ro cgw
#
# The same build commands run outside Docker in `make docker-check`, which CI
# uses because the test machines have no Docker engine.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/cgwproject/cgw/internal/version.v=${VERSION}" \
      -o /out/ ./cmd/cgwd ./cmd/cgwctl

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/cgwd /out/cgwctl /usr/local/bin/
# IKE, NAT-T/ESP-in-UDP, Prometheus metrics (when metrics.listen is set).
EXPOSE 500/udp 4500/udp 9810/tcp
VOLUME ["/etc/cgw"]
ENTRYPOINT ["/usr/local/bin/cgwd"]
CMD ["--config", "/etc/cgw/cgw.yaml"]
