# keyer: every target does its own set-up on a fresh machine (Python 3.11 + make).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_IN  := samples/green.mp4
DEMO_OUT := out/demo.webm

.PHONY: demo test test-cold test-ray bench bench-batch bench-stickers bench-quality headroom memcheck samples clean browser ffmpeg

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	mkdir -p out
	$(BIN)/keyer run $(DEMO_IN) -o $(DEMO_OUT) --overwrite --effects all --posterize-time 12 \
	    --log-file out/demo.log.jsonl
	$(BIN)/keyer report out/demo.log.jsonl --html out/demo-report.html
	$(BIN)/keyer run $(DEMO_IN) --for telegram -o out/demo-telegram.webm --overwrite --effects all \
	    --log-file out/demo-telegram.log.jsonl
	$(BIN)/keyer run $(DEMO_IN) --for whatsapp -o out/demo-whatsapp.webp --overwrite --effects all \
	    --log-file out/demo-whatsapp.log.jsonl
	$(BIN)/keyer check out/demo-telegram.webm --for telegram
	$(BIN)/keyer check out/demo-whatsapp.webp --for whatsapp
	@echo "wrote $(DEMO_OUT), out/demo-report.html, out/demo-telegram.webm and out/demo-whatsapp.webp"

# The HTML dashboard test needs Debian's chromium; install it where we can (root + apt), skip otherwise.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	    || echo "chromium not installed: the dashboard browser test will be skipped"; }

# The suite in parallel, a worker per core (pytest-xdist); the cold-cache and Ray tests apart.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n auto

# A first job on an empty kernel cache, then `keyer warm`: jobs after it compile nothing.
test-cold: $(STAMP)
	$(BIN)/python -m pytest -q -m cold

# keyer batch --ray on a local Ray: installs the ray extra into the venv, runs the tests marked ray.
test-ray: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	$(BIN)/python -m pytest -q -m ray

samples: $(STAMP)
	$(BIN)/python samples/make_samples.py

# FFmpeg's command line is the comparison; install Debian's package where we can.
ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null 2>&1) \
	    || echo "ffmpeg not installed: the bench runs without the FFmpeg comparison"; }

# make bench BENCH_ARGS="--clip my.mp4": the same comparisons on clips of your own.
bench: $(STAMP) ffmpeg
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# How much work per frame the codec floor leaves room for at the fps bars (a bound, not keyer).
headroom: $(STAMP)
	$(BIN)/python benchmarks/headroom.py

memcheck: $(STAMP)
	$(BIN)/python benchmarks/memcheck.py

# Every sticker profile on 720p and 1080p clips: time, encodes, bytes/limit, PSNR; sticker-convert
# beside it where it is installed (SC=path/to/sticker-convert, else on PATH).
bench-stickers: $(STAMP)
	$(BIN)/python benchmarks/stickers.py $(if $(SC),--sticker-convert $(SC)) $(BENCH_ARGS)

# The default matte on the hard set (veil, screen-coloured details, hair, motion blur; green and
# blue) against its exact ground truth, beside FFmpeg chromakey tuned against it (docs/quality.md).
bench-quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py $(BENCH_ARGS)

# keyer batch: N clips at -j 1 and at the admitted parallelism; throughput, peak sum of RSS vs budget.
bench-batch: $(STAMP)
	$(BIN)/python benchmarks/batch.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
	rm -rf "$${KEYER_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/keyer}"/numba*
