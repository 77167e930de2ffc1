# The loadgen image (with shop-server beside it, for deploy/k8s/shop.yaml): a
# multi-stage build, the release binaries copied into a slim Debian runtime.
#   docker build -t stampede/loadgen:latest .
# Nothing in the build needs a system library beyond gcc (SQLite is bundled, no
# OpenSSL). Not built in this project's CI: its machines have no Docker engine.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY common common
COPY server server
COPY loadgen loadgen
RUN cargo build --release --locked -p loadgen -p shop-server \
    && cp target/release/loadgen target/release/shop-server /usr/local/bin/

FROM debian:bookworm-slim
# The start file's starter uses `date +%s%3N` (coreutils) and /bin/sh.
RUN useradd --system --uid 10001 --home-dir /runs stampede \
    && mkdir -p /runs && chown stampede /runs
COPY --from=build /usr/local/bin/loadgen /usr/local/bin/shop-server /usr/local/bin/
COPY scenarios /scenarios
USER stampede
WORKDIR /runs
ENTRYPOINT []
CMD ["loadgen", "--help"]
