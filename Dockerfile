# fluentbit-kinesis image: Fluent Bit built from a pinned release, Python, and
# the kinesis output at /fluent-bit/kinesis/kinesis.so.
#
#   docker build -t fluentbit-kinesis .
#   docker run -e AWS_REGION=us-east-1 -e KINESIS_STREAM=my-stream -p 24224:24224 fluentbit-kinesis
#
# Every plugin step here is a command the test suite runs outside Docker too:
# `pip install .`, `fluentbit-kinesis build --output`, `fluentbit-kinesis check`.

ARG DEBIAN=bookworm-slim

# ---- build: Fluent Bit from source, the plugin into a venv -----------------------
FROM debian:${DEBIAN} AS build
ARG FLUENT_BIT_VERSION=4.2.8
# sha256 of fluent-bit-${FLUENT_BIT_VERSION}.tar.gz; set it to pin the exact bytes
ARG FLUENT_BIT_SHA256=""
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config flex bison curl ca-certificates \
        libssl-dev libyaml-dev libsystemd-dev zlib1g-dev \
        python3 python3-dev python3-venv libpython3-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src/fluent-bit
RUN curl -fsSL -o /tmp/fluent-bit.tar.gz \
        "https://github.com/fluent/fluent-bit/archive/refs/tags/v${FLUENT_BIT_VERSION}.tar.gz" \
    && if [ -n "${FLUENT_BIT_SHA256}" ]; then echo "${FLUENT_BIT_SHA256}  /tmp/fluent-bit.tar.gz" | sha256sum -c -; fi \
    && tar -xzf /tmp/fluent-bit.tar.gz --strip-components=1 \
    && cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/fluent-bit -DFLB_RELEASE=On -DFLB_PROXY_GO=On \
        -DFLB_EXAMPLES=Off -DFLB_SHARED_LIB=Off -DFLB_TESTS_RUNTIME=Off -DFLB_TESTS_INTERNAL=Off \
        -DFLB_WASM=Off -DFLB_KAFKA=Off -DFLB_OUT_KAFKA=Off -DFLB_IN_KAFKA=Off -DFLB_OUT_KAFKA_REST=Off \
    && cmake --build build -j"$(nproc)" --target fluent-bit-bin \
    && install -D build/bin/fluent-bit /fluent-bit/bin/fluent-bit

# the plugin: same commands as tests/test_install.py
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

# ---- final: Fluent Bit + Python + plugin, as a non-root user -----------------------
FROM debian:${DEBIAN}
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 libpython3.11 libssl3 libyaml-0-2 libsystemd0 libstdc++6 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /fluent-bit --shell /usr/sbin/nologin fluentbit
# the venv's site-packages path is recorded in kinesis.so: keep /opt/fluentbit-kinesis
COPY --from=build /opt/fluentbit-kinesis /opt/fluentbit-kinesis
COPY --from=build /fluent-bit /fluent-bit
ENV PATH=/fluent-bit/bin:/opt/fluentbit-kinesis/bin:$PATH
USER 10001
EXPOSE 24224
CMD ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.conf"]
