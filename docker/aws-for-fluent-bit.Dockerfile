# fluentbit-kinesis in an aws-for-fluent-bit 3.x image (Amazon Linux 2023):
# the plugin replaces the AWS Go plugin at /fluent-bit/kinesis.so, the path the
# image's entrypoint loads with `-e`, so existing `Name kinesis` outputs use it
# with the same options (see docs/MIGRATION.md). Build from the checkout root:
#
#   docker build -f docker/aws-for-fluent-bit.Dockerfile -t aws-for-fluent-bit-kinesis .
#
# Two plugins registering "kinesis" cannot both be loaded usefully: Fluent Bit
# picks the first one loaded. That is why this replaces the Go plugin's file.
# Not built on our machines (no Docker engine); see the README for what was run.

ARG AWS_FOR_FLUENT_BIT=public.ecr.aws/aws-observability/aws-for-fluent-bit:3
ARG AMAZON_LINUX=public.ecr.aws/amazonlinux/amazonlinux:2023

# ---- build: the plugin into a venv, with Amazon Linux 2023's Python 3.11 -------------
FROM ${AMAZON_LINUX} AS build
RUN dnf install -y --setopt=install_weak_deps=False gcc python3.11 python3.11-devel python3.11-pip \
    && dnf clean all
COPY pyproject.toml setup.py MANIFEST.in README.md* /src/plugin/
COPY csrc /src/plugin/csrc
COPY fluentbit_kinesis /src/plugin/fluentbit_kinesis
RUN python3.11 -m venv /opt/fluentbit-kinesis \
    && /opt/fluentbit-kinesis/bin/pip install --no-cache-dir /src/plugin \
    && /opt/fluentbit-kinesis/bin/fluentbit-kinesis build --output /out

# ---- final: the AWS image plus Python (interpreter, libpython, standard library) -------
FROM ${AWS_FOR_FLUENT_BIT}
COPY --from=build /usr/bin/python3.11 /usr/bin/python3.11
COPY --from=build /usr/lib64/libpython3.11.so.1.0 /usr/lib64/libpython3.11.so.1.0
COPY --from=build /usr/lib64/python3.11 /usr/lib64/python3.11
COPY --from=build /usr/lib/python3.11 /usr/lib/python3.11
# cffi's extension module needs libffi, which the AWS image does not ship
COPY --from=build /usr/lib64/libffi.so.8* /usr/lib64/
# kinesis.so records the venv's path: keep /opt/fluentbit-kinesis
COPY --from=build /opt/fluentbit-kinesis /opt/fluentbit-kinesis
COPY --from=build /out/kinesis.so /fluent-bit/kinesis.so
# fails the build when a library of the plugin or of its Python modules is missing
RUN ["/opt/fluentbit-kinesis/bin/python", "-c", "import ssl, hashlib, zlib, _cffi_backend, orjson, msgpack"]
