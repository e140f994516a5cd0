# fluentbit-kinesis image: Fluent Bit as released in the official image
# fluent/fluent-bit:${FLUENT_BIT_VERSION} (not compiled here), Debian's Python,
# and the kinesis output at /fluent-bit/kinesis/kinesis.so, run as user 10001.
#
#   docker build -t fluentbit-kinesis .
#   docker run -e AWS_REGION=us-east-1 -e KINESIS_STREAM=my-stream -p 24224:24224 fluentbit-kinesis
#
# Build arguments:
#   FLUENT_BIT_VERSION  the official image's tag (4.2.8)
#   FLUENT_BIT_IMAGE    where the Fluent Bit binary comes from (fluent/fluent-bit:$FLUENT_BIT_VERSION);
#                       any image with /fluent-bit/bin/fluent-bit, e.g. a local stand-in
#   DEBIAN              the final image's Debian release: the one the official image was built
#                       on, whose libraries the copied binary links: trixie-slim for 4.2.8 and
#                       5.x, bookworm-slim for 3.2 to 4.2.0
#
# Stages (`docker build --target NAME`):
#   build    the plugin built into a venv (pip install ., fluentbit-kinesis build), then the
#            venv trimmed (docker/slim_venv.py): no pip or setuptools, botocore's data only
#            for the services the plugin and the credential chain call, no debug symbols
#   plugin   Debian's Python runtime, the venv and kinesis.so, checked, as user 10001: all of
#            the image but Fluent Bit, so it builds where the official image cannot be pulled
#   (last)   plugin + the official binary + the shared libraries it links
#
# No package name is written here: what the plugin and the copied binary link is
# read with ldd and mapped to the release's packages by docker/packages-for, so
# one Dockerfile serves bookworm (libssl3, Python 3.11) and trixie (libssl3t64,
# Python 3.13). Every step's command is one the tests run outside Docker too.

ARG FLUENT_BIT_VERSION=4.2.8
ARG FLUENT_BIT_IMAGE=fluent/fluent-bit:${FLUENT_BIT_VERSION}
ARG DEBIAN=trixie-slim

# ---- build: the plugin into a venv, with the final stage's Python ---------------------
FROM debian:${DEBIAN} AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc libc6-dev python3-dev python3-venv binutils \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

# the plugin: the README's install commands
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

# The venv as the image needs it (docker/slim_venv.py), with its own interpreter: a
# launcher linked to libpython (Py_BytesMain, what /usr/bin/python3 runs; 16 kB), which
# kinesis.so links anyway, so the image needs no Debian interpreter package (7 MB, a
# second, static copy of libpython). The venv finds the standard library through its
# pyvenv.cfg, as with `python -m venv --copies`. Then the Debian packages the venv and
# kinesis.so link (ldd + dpkg -S: exact here, where they are installed).
COPY docker/slim_venv.py docker/packages-for /src/docker/
RUN /opt/fluentbit-kinesis/bin/python -m pip uninstall -y -q setuptools pip \
    && rm -f /opt/fluentbit-kinesis/bin/Activate.ps1 \
    && /opt/fluentbit-kinesis/bin/python /src/docker/slim_venv.py trim /opt/fluentbit-kinesis \
    && printf '#include <Python.h>\nint main(int argc, char **argv) { return Py_BytesMain(argc, argv); }\n' > /src/python.c \
    && gcc -O2 -s $(python3-config --includes) -o /src/python3 /src/python.c $(python3-config --ldflags --embed) \
    && rm /opt/fluentbit-kinesis/bin/python3 && cp /src/python3 /opt/fluentbit-kinesis/bin/python3 \
    && /opt/fluentbit-kinesis/bin/python -c 'import sys, fluentbit_kinesis; assert sys.prefix == "/opt/fluentbit-kinesis", sys.prefix' \
    && /src/docker/packages-for /fluent-bit/kinesis/kinesis.so $(find /opt/fluentbit-kinesis -name '*.so') \
        /opt/fluentbit-kinesis/bin/python3 > /src/runtime-packages \
    && echo "runtime packages:" $(cat /src/runtime-packages)

# ---- plugin: Python, the venv and the plugin; no compiler, pip or setuptools -----------
FROM debian:${DEBIAN} AS plugin
COPY --from=build /src/runtime-packages /src/docker/packages-for /usr/local/lib/fluentbit-kinesis/
RUN apt-get update \
    && apt-get install -y --no-install-recommends $(cat /usr/local/lib/fluentbit-kinesis/runtime-packages) \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
    && useradd --system --uid 10001 --home-dir /fluent-bit --shell /usr/sbin/nologin fluentbit \
    && install -d -o fluentbit -g fluentbit -m 0700 /var/lib/fluentbit-kinesis
# the venv's site-packages path is recorded in kinesis.so: keep /opt/fluentbit-kinesis
COPY --from=build /opt/fluentbit-kinesis /opt/fluentbit-kinesis
COPY --from=build /fluent-bit/kinesis /fluent-bit/kinesis
COPY --from=build /fluent-bit/etc/fluent-bit.conf /fluent-bit/etc/fluent-bit.yaml /fluent-bit/etc/plugins.conf /fluent-bit/etc/
COPY --from=build /src/docker/slim_venv.py /usr/local/lib/fluentbit-kinesis/
ENV PATH=/fluent-bit/bin:/opt/fluentbit-kinesis/bin:$PATH
# the plugin's durable state (ledger, hand-off spool), writable by user 10001; mount a
# volume there to keep it when the container is replaced
ENV STATE_DIRECTORY="/var/lib/fluentbit-kinesis"
# fails the build when a library of the plugin is missing, or the venv lost what it needs
# (every module, a client of every service the credential chain uses); as root, this
# also writes the __pycache__ of the standard library modules the plugin imports
RUN ! ldd /fluent-bit/kinesis/kinesis.so $(find /opt/fluentbit-kinesis -name '*.so') /opt/fluentbit-kinesis/bin/python3 \
        | grep 'not found' \
    && python3 /usr/local/lib/fluentbit-kinesis/slim_venv.py check /opt/fluentbit-kinesis
USER 10001
RUN AWS_REGION=us-east-1 KINESIS_STREAM=build-check fluentbit-kinesis check -c /fluent-bit/etc/fluent-bit.conf >/dev/null \
    && AWS_REGION=us-east-1 KINESIS_STREAM=build-check fluentbit-kinesis check -c /fluent-bit/etc/fluent-bit.yaml >/dev/null
EXPOSE 24224
CMD ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.conf"]

# ---- Fluent Bit: the official image (or FLUENT_BIT_IMAGE), only its /fluent-bit ---------
# (after the plugin stages: `--target plugin` never needs this image)
FROM ${FLUENT_BIT_IMAGE} AS fluent-bit

# ---- final: plugin + Fluent Bit + the libraries the binary links ----------------------
FROM plugin
USER root
# the official image's /fluent-bit (bin/fluent-bit, etc/parsers*.conf, ...), then our configs over its own
COPY --from=fluent-bit /fluent-bit /fluent-bit
COPY docker/fluent-bit.conf docker/fluent-bit.yaml docker/plugins.conf /fluent-bit/etc/
# the binary's libraries (ldd: its DT_NEEDED and theirs, mapped to this release's
# packages) and the CA certificates Fluent Bit's TLS outputs use
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        $(/usr/local/lib/fluentbit-kinesis/packages-for /fluent-bit/bin/fluent-bit) ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
    && ! ldd /fluent-bit/bin/fluent-bit /fluent-bit/kinesis/kinesis.so | grep 'not found' \
    && /fluent-bit/bin/fluent-bit --version
USER 10001
EXPOSE 24224 2020
CMD ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.conf"]
