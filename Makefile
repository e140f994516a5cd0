# make          builds bin/kinesis.so and fluentbit_kinesis/_fastjson (and the venv they use) and the test host
# make test     runs the test suite (after csrc-check)
# make csrc-check  compiles every csrc/*.c on its own, warnings as errors
# make demo     runs the plugin against a local Kinesis endpoint (moto on 127.0.0.1)
# make bench    runs the benchmarks (CPU per record; at the stream's limit, FLUENT_BIT=path adds a real Fluent Bit)
# make fuzz     fuzzes the fast path (libFuzzer) and decode+shape (atheris) for FUZZ_SECONDS (600) in all
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CC     ?= cc

HOSTS  := bin/flb-test-host bin/flb-test-host-1.9 bin/flb-test-host-bare

# the C files: the shim (fbk.h and its files) and the fast path (fastjson.h and fastjson*.c);
# fluentbit_kinesis/tools/build.py lists which go into which
CSRC_C     := $(wildcard csrc/*.c)
CSRC_H     := $(wildcard csrc/*.h)
FASTJSON_C := $(wildcard csrc/fastjson*.c)
KPL_C      := csrc/fastjson_kpl.c csrc/fastjson_kpl_write.c csrc/fastjson_kpl_check.c csrc/fastjson_md5.c \
              csrc/fastjson_md5_many.c csrc/fastjson_simd.c csrc/fastjson_kpl_table.c

all: bin/kinesis.so $(HOSTS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

bin/kinesis.so: $(VENV)/.installed $(CSRC_C) $(CSRC_H) fluentbit_kinesis/tools/build.py
	$(PY) -m fluentbit_kinesis.tools.build $@

# the test host exports its flb_* functions as Fluent Bit does (-rdynamic);
# -1.9 imitates Fluent Bit 1.9's one-field API; -bare exports nothing
bin/flb-test-host: tests/support/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -rdynamic -o $@ $< -ldl -lpthread

bin/flb-test-host-1.9: tests/support/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -rdynamic -DIMITATE_FLB_1_9 -o $@ $< -ldl -lpthread

bin/flb-test-host-bare: tests/support/host/flb_host.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -o $@ $< -ldl -lpthread

# kinesalite (npm), the second emulator of the resharding tests; they skip without it
KINESALITE := .cache/kinesalite/node_modules/.bin/kinesalite
$(KINESALITE):
	mkdir -p .cache/kinesalite
	npm install --prefix .cache/kinesalite --no-audit --no-fund --silent kinesalite@3.3.3

kinesalite: $(KINESALITE)

# Each C file compiles on its own, with -Wextra and warnings as errors: a file
# that includes Python.h gets Python's include dir and the macros build.py
# defines (from $(PYTHON), the venv's base); the others need neither.
CSRC_PYTHON   := $(shell grep -l '^\#include <Python.h>' $(CSRC_C))
CSRC_PY_FLAGS  = $(shell $(PYTHON) -c 'import json, shlex, sys, sysconfig; print(" ".join(shlex.quote(f) for f in ( \
	"-I" + sysconfig.get_path("include"), "-DFBK_PYTHON_EXECUTABLE=" + json.dumps(sys.executable), \
	"-DFBK_PYTHON_STDLIB=" + json.dumps(sysconfig.get_path("stdlib")), "-DFBK_PYTHON_PLATLIBDIR=" + json.dumps(sys.platlibdir))))')

csrc-check: $(patsubst csrc/%.c,build/csrc-check/%.o,$(CSRC_C))

build/csrc-check/%.o: csrc/%.c $(CSRC_H)
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror $(if $(filter $<,$(CSRC_PYTHON)),$(CSRC_PY_FLAGS)) -c $< -o $@

# with npm on the machine, the tests get kinesalite too (a failed install only skips its tests)
test: all csrc-check
	-@command -v npm >/dev/null && $(MAKE) -s kinesalite
	$(PY) -m pytest tests

demo: all
	$(PY) examples/demo.py

bench: all
	$(PY) -m tests.bench --runs 3
	$(PY) -m tests.bench.throughput $(if $(FLUENT_BIT),--fluent-bit $(FLUENT_BIT))
	$(if $(FLUENT_BIT),$(PY) -m tests.bench.versus_c --fluent-bit $(FLUENT_BIT) --runs 3)

clean:
	rm -rf bin build *.egg-info fluentbit_kinesis/_fastjson.*.so

.PHONY: all test demo bench clean kinesalite csrc-check

# Coverage-guided fuzzing, half the time each (after a tenth each on the PutRecords body,
# tests/fuzz/fuzz_body.c, its base64 at each SIMD level, KPL aggregation with the MD5 of many
# messages, tests/fuzz/fuzz_kpl.c, the PutRecords answer's scan,
# tests/fuzz/fuzz_answer.c, and the EntryTable kernels, tests/fuzz/fuzz_entries.c; a twentieth each on
# zstd's frame loop, tests/fuzz/fuzz_frames.c, and pacing's plan, take and answer over a flush's lanes,
# tests/fuzz/fuzz_pace.c): csrc/fastjson*.c under libFuzzer
# with ASan+UBSan, then decode+shape under atheris with the differential
# oracle (tests/support/differential.py). Needs clang (installed with apt-get when
# missing and run as root) and atheris (pip, into the venv). Findings are
# written to tests/fuzz_corpus/ (crash-*), which `make test` replays; the
# growing working corpus stays in build/fuzz/.
FUZZ_SECONDS ?= 600
FUZZ_DIR     := build/fuzz
FUZZ_FLAGS   := -dict=tests/fuzz/msgpack.dict -max_len=8192 -timeout=20 -rss_limit_mb=1024 -artifact_prefix=tests/fuzz_corpus/ -print_final_stats=1

# $(call fuzz_run,NAME,libFuzzer options,N): tests/fuzz/fuzz_NAME.c's fuzzer for FUZZ_SECONDS / N
# over $(FUZZ_DIR)/NAME, its log kept, its end shown (the log's last lines when it found something)
FUZZ_CC  := clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz_run = $(FUZZ_DIR)/fuzz_$(1) $(2) -timeout=20 -artifact_prefix=$(FUZZ_DIR)/$(1)- -print_final_stats=1 \
	-max_total_time=$$(( $(FUZZ_SECONDS) / $(3) )) $(FUZZ_DIR)/$(1) > $(FUZZ_DIR)/$(1).log 2>&1; \
	rc=$$?; grep -E "INITED|DONE" $(FUZZ_DIR)/$(1).log; [ $$rc = 0 ] || tail -40 $(FUZZ_DIR)/$(1).log; exit $$rc

fuzz: all
	@command -v clang >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q clang; } || \
		{ echo "make fuzz needs clang (libFuzzer): apt-get install clang"; exit 1; }
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install -q atheris
	@mkdir -p $(FUZZ_DIR)/c $(FUZZ_DIR)/py $(FUZZ_DIR)/body $(FUZZ_DIR)/kpl $(FUZZ_DIR)/answer $(FUZZ_DIR)/entries \
		$(FUZZ_DIR)/frames $(FUZZ_DIR)/pace
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_fastjson tests/fuzz/fuzz_fastjson.c $(FASTJSON_C) -lm
	$(PY) tests/fuzz/build_fastjson_cov.py $(FUZZ_DIR)/fastjson-cov
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_body tests/fuzz/fuzz_body.c csrc/fastjson_body.c csrc/fastjson_simd.c \
		csrc/fastjson_base64_avx2.c
	$(call fuzz_run,body,-max_len=8192 -rss_limit_mb=1024,10)
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_kpl tests/fuzz/fuzz_kpl.c $(KPL_C)
	$(call fuzz_run,kpl,-max_len=4096 -rss_limit_mb=2048,10)
	cp tests/fuzz/answer_seeds/* $(FUZZ_DIR)/answer/
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_answer tests/fuzz/fuzz_answer.c $(FASTJSON_C) -lm
	$(call fuzz_run,answer,-dict=tests/fuzz/json.dict -max_len=4096 -rss_limit_mb=2048,10)
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_entries tests/fuzz/fuzz_entries.c $(FASTJSON_C) -lm
	$(call fuzz_run,entries,-max_len=8192 -rss_limit_mb=2048,10)
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_frames tests/fuzz/fuzz_frames.c csrc/fastjson_frames.c
	$(call fuzz_run,frames,-max_len=8192 -rss_limit_mb=1024,20)
	$(FUZZ_CC) -o $(FUZZ_DIR)/fuzz_pace tests/fuzz/fuzz_pace.c $(FASTJSON_C) -lm
	$(call fuzz_run,pace,-max_len=2048 -rss_limit_mb=1024,20)
	$(FUZZ_DIR)/fuzz_fastjson $(FUZZ_FLAGS) -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) \
		$(FUZZ_DIR)/c tests/fuzz_corpus > $(FUZZ_DIR)/c.log 2>&1; rc=$$?; \
		grep -E "INITED|DONE|stat::" $(FUZZ_DIR)/c.log; [ $$rc = 0 ] || tail -40 $(FUZZ_DIR)/c.log; exit $$rc
	FUZZ_FASTJSON_DIR=$(FUZZ_DIR)/fastjson-cov FUZZ_STATS=$(FUZZ_DIR)/py-stats.txt \
		$(PY) tests/fuzz/fuzz_shape.py $(FUZZ_FLAGS) -max_total_time=$$(( $(FUZZ_SECONDS) - $(FUZZ_SECONDS) / 2 )) \
		$(FUZZ_DIR)/py tests/fuzz_corpus > $(FUZZ_DIR)/py.log 2>&1; rc=$$?; \
		grep -E "INITED|DONE|stat::" $(FUZZ_DIR)/py.log; [ $$rc = 0 ] || tail -40 $(FUZZ_DIR)/py.log; \
		cat $(FUZZ_DIR)/py-stats.txt; exit $$rc
	@! ls tests/fuzz_corpus/ | grep -E "^(crash|leak|timeout|oom)-" || { echo "make fuzz: findings above, in tests/fuzz_corpus/"; exit 1; }

.PHONY: fuzz

# the container image (see Dockerfile; FLUENT_BIT_VERSION=... to choose the release)
image:
	docker build $(if $(FLUENT_BIT_VERSION),--build-arg FLUENT_BIT_VERSION=$(FLUENT_BIT_VERSION)) -t fluentbit-kinesis .

.PHONY: image
