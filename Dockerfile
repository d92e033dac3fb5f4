# syntax=docker/dockerfile:1
# sigillo gateway image. Build: docker build -t sigillo .   (BuildKit needed for the cache mounts)

FROM rust:1-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sigillo \
 && cp target/release/sigillo /usr/local/bin/sigillo

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system sigillo \
 && useradd --system --gid sigillo --home-dir /var/lib/sigillo --shell /usr/sbin/nologin sigillo \
 && mkdir -p /var/lib/sigillo/tokens \
 && chown -R sigillo:sigillo /var/lib/sigillo \
 && chmod 700 /var/lib/sigillo/tokens
COPY --from=builder /usr/local/bin/sigillo /usr/local/bin/sigillo
COPY config/ /etc/sigillo/
COPY hsm/init-token hsm/softhsm2.conf.template /usr/local/lib/sigillo/
COPY docker/entrypoint.sh /usr/local/bin/sigillo-entrypoint

ENV SOFTHSM2_CONF=/var/lib/sigillo/softhsm2.conf \
    SIGILLO_HSM_TOKEN_DIR=/var/lib/sigillo/tokens \
    SIGILLO__HSM__MODULE=/usr/lib/softhsm/libsofthsm2.so \
    SIGILLO__SERVER__PUBLIC_ADDR=0.0.0.0:8080 \
    SIGILLO__SERVER__ADMIN_ADDR=0.0.0.0:8081 \
    RUST_LOG=info

USER sigillo
WORKDIR /var/lib/sigillo
VOLUME ["/var/lib/sigillo/tokens"]
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/sigillo-entrypoint"]
CMD ["serve"]
