# fluentbit-kinesis image: Fluent Bit as released in the official image
# fluent/fluent-bit:${FLUENT_BIT_VERSION} (not compiled here), Python, and the
# kinesis output at /fluent-bit/kinesis/kinesis.so, run as a non-root user.
#
#   docker build -t fluentbit-kinesis .
#   docker run -e AWS_REGION=us-east-1 -e KINESIS_STREAM=my-stream -p 24224:24224 fluentbit-kinesis
#
# The official image is distroless: its binary is copied here without the
# shared libraries it links, so the final stage installs them from the same
# Debian release the official image was built on (DEBIAN below). For another
# Fluent Bit version pick that version's release: trixie for 4.2.8 and 5.x,
# bookworm for 3.2 to 4.2.0 (where the t64 package names lose their "t64").
# tests/tools/test_image.py checks the package list against a local Fluent Bit build.
#
# Every plugin step here is a command the test suite runs outside Docker too:
# `pip install .`, `fluentbit-kinesis build --output`, `fluentbit-kinesis check`.

ARG FLUENT_BIT_VERSION=4.2.8
ARG DEBIAN=trixie-slim

FROM fluent/fluent-bit:${FLUENT_BIT_VERSION} AS fluent-bit

# ---- build: the plugin into a venv, against the final stage's Python ----------------
FROM debian:${DEBIAN} AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential python3 python3-dev python3-venv libpython3-dev \
    && rm -rf /var/lib/apt/lists/*

# the plugin: same commands as tests/tools/test_install.py
COPY pyproject.toml setup.py MANIFEST.in README.md* /src/plugin/
COPY csrc /src/plugin/csrc
COPY fluentbit_kinesis /src/plugin/fluentbit_kinesis
RUN python3 -m venv /opt/fluentbit-kinesis \
    && /opt/fluentbit-kinesis/bin/pip install --no-cache-dir /src/plugin \
    && /opt/fluentbit-kinesis/bin/fluentbit-kinesis build --output /fluent-bit/kinesis

COPY docker/fluent-bit.conf docker/fluent-bit.yaml docker/plugins.conf /fluent-bit/etc/
RUN AWS_REGION=us-east-1 KINESIS_STREAM=build-check \
        /opt/fluentbit-kinesis/bin/fluentbit-kinesis check -c /fluent-bit/etc/fluent-bit.conf \
    && AWS_REGION=us-east-1 KINESIS_STREAM=build-check \
        /opt/fluentbit-kinesis/bin/fluentbit-kinesis check -c /fluent-bit/etc/fluent-bit.yaml

# ---- final: official Fluent Bit + Python + plugin, as a non-root user ---------------
FROM debian:${DEBIAN}
# Fluent Bit's libraries (TLS, YAML, systemd journal, PostgreSQL and Kafka SASL
# outputs, compression), then Python for the plugin
RUN apt-get update && apt-get install -y --no-install-recommends \
        libssl3t64 libcurl4t64 libsasl2-2 libpq5 libsystemd0 libyaml-0-2 zlib1g libzstd1 liblz4-1 \
        libsqlite3-0 libatomic1 libstdc++6 ca-certificates python3 libpython3.13 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /fluent-bit --shell /usr/sbin/nologin fluentbit
COPY --from=fluent-bit /fluent-bit /fluent-bit
# the venv's site-packages path is recorded in kinesis.so: keep /opt/fluentbit-kinesis
COPY --from=build /opt/fluentbit-kinesis /opt/fluentbit-kinesis
COPY --from=build /fluent-bit/kinesis /fluent-bit/kinesis
COPY --from=build /fluent-bit/etc/fluent-bit.conf /fluent-bit/etc/fluent-bit.yaml /fluent-bit/etc/plugins.conf /fluent-bit/etc/
# fails the build when a library of the copied binary or of the plugin is missing
RUN ! ldd /fluent-bit/bin/fluent-bit /fluent-bit/kinesis/kinesis.so | grep 'not found' \
    && /fluent-bit/bin/fluent-bit --version
ENV PATH=/fluent-bit/bin:/opt/fluentbit-kinesis/bin:$PATH
USER 10001
EXPOSE 24224
CMD ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.conf"]
