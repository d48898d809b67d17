# smshub container image: build in one stage, run as a non-root user in a slim one.
#   docker build -t smshub .
#   docker run -d -p 8080:8080 -v smshub-data:/var/lib/smshub --name smshub smshub
#   docker exec smshub smshub keys create --name my-app
# USB modems: add --device /dev/ttyUSB2 (and --group-add dialout if its group is not 20).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# rust-toolchain.toml pins the toolchain; rustup installs it on first use.
RUN cargo build --release --locked --bin smshub \
 && install -m 0755 target/release/smshub /smshub

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --gid dialout --home-dir /var/lib/smshub smshub \
 && install -d -o smshub -g dialout -m 0700 /var/lib/smshub
COPY --from=build /smshub /usr/local/bin/smshub
USER smshub
WORKDIR /var/lib/smshub
VOLUME ["/var/lib/smshub"]
ENV SMSHUB_LISTEN=0.0.0.0:8080 \
    SMSHUB_DATABASE_URL=sqlite:///var/lib/smshub/smshub.db \
    SMSHUB_LOG_FORMAT=json
EXPOSE 8080
# The image has no curl: the binary probes its own readiness.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["smshub", "health", "--url", "http://127.0.0.1:8080/health/ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["smshub"]
CMD ["serve"]
