# syntax=docker/dockerfile:1
#
# netcanary's one image: every verb (analyze, run, serve, agent, target) runs from it,
# so the probe and target pods a run starts use the same image as the run itself. `run` and
# `serve` start those pods from ghcr.io/netcanary/netcanary:<version> unless --image says
# otherwise (RunOptions in crates/orchestrator/src/run.rs), so tag the image that way:
#
#   docker build -t ghcr.io/netcanary/netcanary:0.1.0 .
#
# The binary is static (scripts/build-static.sh; tests/static_binary.rs runs what it builds in
# an empty root as the image's user), so the runtime stage needs nothing else.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate downloads and the compiled dependencies between builds; the
# binary is copied out of the target cache, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cp "$(scripts/build-static.sh | tail -n 1)" /netcanary

# distroless static: CA certificates, /etc/passwd with `nonroot` (65532), tzdata; no shell,
# no package manager, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="netcanary" \
      org.opencontainers.image.description="Proves from inside a Kubernetes cluster that its NetworkPolicy is really enforced" \
      org.opencontainers.image.source="https://github.com/netcanary/netcanary" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /netcanary /netcanary
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/netcanary"]
