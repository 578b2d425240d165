# streamer: multi-stage build. The runtime image runs as a non-root user, reads its
# config from /etc/streamer/config.ini and the GeoIP databases from /var/lib/streamer/geoip,
# and is safe to restart (or kill) at any moment: offsets live in PostgreSQL.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock schema.sql ./
COPY src ./src
RUN cargo build --release --locked --bin streamer

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin streamer
COPY --from=build /src/target/release/streamer /usr/local/bin/streamer
ENV STREAMER_IN_DOCKER=1 RUST_LOG=info
USER 10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/streamer"]
CMD ["/etc/streamer/config.ini"]
