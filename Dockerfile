# ndp-responder's sidecar image.
#
# With a registry:   docker build -t ndp-responder:latest .
# Without one:       scripts/build-image.sh   (assembles the same root filesystem from this
#                    machine's node and the built checkout with scripts/make-rootfs.sh, and
#                    `docker import`s it with the last stage's instructions as --change options)
#
# Run it with the host's network, two capabilities and the Docker socket read-only:
#   docker run -d --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro ndp-responder:latest run --interface eth0 --docker

ARG BUILD_IMAGE=node:20-bookworm
ARG ROOTFS=rootfs

# Stage 1: TypeScript to dist/, the AF_PACKET addon (and the optional pcap back end's addons,
# against libpcap), production dependencies, then the runtime root filesystem in /rootfs.
FROM ${BUILD_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpcap-dev g++ make python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# `npm ci` runs the package's `prepare` script: tsc and the addon (node-gyp).
RUN npm ci --no-audit --no-fund && bash scripts/make-rootfs.sh /rootfs

# Stage 2: just that root filesystem: node, the libraries it and the addons load, /app.
FROM scratch AS rootfs
COPY --from=build /rootfs/ /

# Stage 3 (runtime): metadata on top of the root filesystem. scripts/build-image.sh applies these
# instructions to an imported root filesystem: keep them to ENV, WORKDIR, LABEL, ENTRYPOINT, CMD.
FROM ${ROOTFS} AS runtime
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production
WORKDIR /app
LABEL org.opencontainers.image.title="ndp-responder" \
      org.opencontainers.image.description="User-space IPv6 Neighbor Discovery responder for Docker hosts" \
      org.opencontainers.image.licenses="MIT"
# Root inside the container, but with only the capabilities `docker run` grants (NET_RAW to
# capture and send, NET_ADMIN for multicast memberships).
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["run"]
