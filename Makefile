# make          builds bin/kinesis.so and fluentbit_kinesis/_fastjson (and the venv they use) and the test host
# make test     runs the test suite
# make demo     runs the plugin against a local Kinesis endpoint (moto on 127.0.0.1)
# make bench    runs the benchmarks
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CC     ?= cc

HOSTS  := bin/flb-test-host bin/flb-test-host-1.9 bin/flb-test-host-bare

all: bin/kinesis.so $(HOSTS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

bin/kinesis.so: $(VENV)/.installed csrc/shim.c fluentbit_kinesis/build.py csrc/fastjson.c
	$(PY) -m fluentbit_kinesis.build $@

# the test host exports its flb_* functions as Fluent Bit does (-rdynamic);
# -1.9 imitates Fluent Bit 1.9's one-field API; -bare exports nothing
bin/flb-test-host: tests/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -rdynamic -o $@ $< -ldl -lpthread

bin/flb-test-host-1.9: tests/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -rdynamic -DIMITATE_FLB_1_9 -o $@ $< -ldl -lpthread

bin/flb-test-host-bare: tests/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -o $@ $< -ldl -lpthread

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
