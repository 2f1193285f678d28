# syntax=docker/dockerfile:1
# The controller image: built on Debian (glibc; aws-lc-rs, bundled SQLite and mimalloc compile their C
# there without musl quirks), run on distroless cc (glibc + libgcc, no shell) as the nonroot user.
# Build: docker build -t ghcr.io/confighub/confighub-source-controller:0.1.0 .

# The toolchain the project is tested with.
FROM docker.io/library/rust:1.95-bookworm AS builder
WORKDIR /src
# Dependencies first, so a source change does not rebuild them: a stub crate with the real manifests.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin confighub-source-controller \
    && rm -rf src
COPY src ./src
# touch: the stub's build outputs are newer than the copied sources otherwise.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin confighub-source-controller \
    && cp target/release/confighub-source-controller /confighub-source-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /confighub-source-controller /usr/local/bin/confighub-source-controller
# 65532 = nonroot in distroless; the chart runs it with runAsNonRoot and a read-only root file system.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/confighub-source-controller"]
CMD ["run", "--storage-path=/data"]
