# syntax=docker/dockerfile:1
# netprobe image. Multi-arch: nothing here is specific to an architecture, and
# both base images are multi-arch, so it builds for linux/amd64 and
# linux/arm64 (AKS Arm64 pools) natively or under emulation:
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/netprobe:<version> --push .
# Without a Docker engine: `az acr build --platform linux/arm64 ...` per
# architecture (docs/install.md). Not buildable on the development machines,
# which have no Docker engine.

# Base images pinned by digest (the multi-arch index), kept current by
# Renovate (renovate.json, docker:pinDigests). The digests were read from
# public builds that use them for linux/amd64 and linux/arm64 (this
# project's machines cannot reach a registry): docs/releasing.md.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
# The Cargo workspace: the agent and its simulated VNet crate (the demo needs
# it at run time); the test kit and benches are members or targets Cargo
# must see, but are not built.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
# The release profile, glibc linked in, a fixed-address executable: the
# flags and why are in scripts/build-release (less memory on every node).
COPY scripts/build-release ./scripts/build-release
# The binary carries its dependency list (cargo auditable: a section that is
# never loaded, so no memory on the node), for `cargo audit bin`, syft, trivy.
RUN cargo install --locked cargo-auditable --version 0.7.7
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-release --auditable /netprobe

# A static binary needs no C library in the image: CA certificates,
# /etc/passwd and /etc/nsswitch.conf, no shell, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
# checkov:skip=CKV_DOCKER_2: Kubernetes probes /healthz and /readyz (deploy/base/daemonset.yaml); Docker's HEALTHCHECK is ignored there and needs a shell.
LABEL org.opencontainers.image.title="netprobe" \
      org.opencontainers.image.description="Proves from every AKS node that an Azure ML workspace and its resources resolve and answer privately" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/netprobe/netprobe"
COPY --from=build /netprobe /usr/local/bin/netprobe
USER 65532:65532
# Smoke test: the binary runs in the final image.
RUN ["/usr/local/bin/netprobe", "--version"]
EXPOSE 9469
ENTRYPOINT ["/usr/local/bin/netprobe"]
CMD ["probe", "--config", "/etc/netprobe/netprobe.yaml"]
