# make          builds bin/kinesis.so and fluentbit_kinesis/_fastjson (and the venv they use) and the test host
# make test     runs the test suite
# make demo     runs the plugin against a local Kinesis endpoint (moto on 127.0.0.1)
# make bench    runs the benchmarks
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CC     ?= cc

all: bin/kinesis.so bin/flb-test-host

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

bin/kinesis.so: $(VENV)/.installed csrc/shim.c csrc/engine.c fluentbit_kinesis/build.py csrc/fastjson.c
	$(PY) -m fluentbit_kinesis.build $@

bin/flb-test-host: tests/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -rdynamic -o $@ $< -ldl -lpthread

test: all
	$(PY) -m pytest tests

demo: all
	$(PY) examples/demo.py

bench: all
	$(PY) -m tests.bench --runs 3

clean:
	rm -rf bin build *.egg-info fluentbit_kinesis/_fastjson.*.so

.PHONY: all test demo bench clean

# the container image (see Dockerfile; FLUENT_BIT_VERSION=... to choose the release)
image:
	docker build $(if $(FLUENT_BIT_VERSION),--build-arg FLUENT_BIT_VERSION=$(FLUENT_BIT_VERSION)) -t fluentbit-kinesis .

.PHONY: image
