# The two commands that matter: `make run` and `make test`. Both set up
# everything they need on a fresh machine (Python 3.11, gcc, git).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test build generate bench bench-video seed search-index search-eval bench-search bench-feed bench-realtime bench-stories bench-messaging bench-web loadtest faults fuzz test-servers lint moderator-grant moderator-revoke shards shards-move clean distclean

GATEWAY ?= http://127.0.0.1:$(or $(PICTOR_GATEWAY_PORT),8080)
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 2
LOADTEST_DURATION ?= 60s
FUZZ_SECONDS ?= 180

# `make run`'s replicas unless PICTOR_REPLICAS is set: the feed, the read people open the app for, in two
# processes (one asyncio process tops out at one core; docs/PERFORMANCE.md, stop 37).
RUN_REPLICAS ?= feed=2

run: build
	PICTOR_REPLICAS="$${PICTOR_REPLICAS-$(RUN_REPLICAS)}" $(PY) -m services.mesh.launcher

test: build
	$(PY) -m pytest -q
	PICTOR_PURE_PYTHON=1 $(PY) -m pytest -q tests/hotpath

bench: build
	$(PY) -m hotpath.bench
	$(PY) -m services.media.bench

# A 30 s 1080p30 clip through the transcoder's child process: both renditions, HLS and the poster;
# wall time and real-time factor per run, with the load average (BENCH_SECONDS, BENCH_RUNS; services/media/video_bench.py).
bench-video: build
	$(PY) -m services.media.video_bench

# Against a running stack (`make run` in another terminal):
# a realistic dataset (SEED_USERS, SEED_POSTS, ...: see loadtest/seed.py),
seed: build
	$(PY) -m loadtest.seed

# search's index rebuilt from its owners (after a seed: the seed writes no events), with progress;
# explore's offline evaluation (recall@20 against popularity); search's benchmark (services/search/).
search-index: build
	$(PY) -m services.search.rebuild

search-eval: build
	$(PY) -m services.search.evaluate

bench-search: build
	$(PY) -m services.search.bench

# the feed benchmark: wrk through Envoy (the GET /v1/users/me ceiling and GET /v1/feed, installed with
# apt-get if missing), page bytes (JSON, gzip, brotli, protobuf), hybrid vs naive (id selection and the
# hydrated page), the celebrity write path; BENCH_CONCURRENCY, BENCH_SECONDS, BENCH_USERS, BENCH_ACCEPT_ENCODING,
bench-feed: build
	$(PY) -m loadtest.feed_bench

# The live stream on a private stack of its own: memory per idle stream and delivery
# latency (BENCH_IDLE_STREAMS, BENCH_STREAMS, BENCH_EVENTS, BENCH_RATE; services/realtime/bench.py).
bench-realtime: build
	$(PY) -m services.realtime.bench

bench-stories: build
	$(PY) -m services.stories.bench

bench-messaging: build
	$(PY) -m services.messaging.bench

# First feed paint in Chromium, from the browser's timing API (BENCH_RUNS; BENCH_USERNAME and
# BENCH_PASSWORD to read as a seeded user; loadtest/web_bench.py).
bench-web: build
	$(PY) -m loadtest.web_bench

# and the Locust run: CSV and HTML reports and loadtest/results/summary.json; names the knee (the
# highest step of concurrent users whose feed p99 < 200 ms; goal 150): LOADTEST_SHAPE=steps LOADTEST_STEP=25
# LOADTEST_STEP_SECONDS=30 LOADTEST_USERS=200 LOADTEST_DURATION=250s make loadtest finds it.
# Fails when the feed's p99 is over 200 ms or more than 1% of requests fail.
loadtest: build
	mkdir -p loadtest/results
	$(PY) -m locust -f loadtest/locustfile.py --headless -H $(GATEWAY) -u $(LOADTEST_USERS) \
		-r $(LOADTEST_SPAWN_RATE) -t $(LOADTEST_DURATION) --csv loadtest/results/locust \
		--html loadtest/results/locust.html --only-summary --exit-code-on-error 0
	$(PY) -m loadtest.summary loadtest/results

# The fault suite (docs/RELIABILITY.md): a stack of its own under load, each process
# SIGKILLed in turn; fails when an acknowledged write is lost, a 5xx other than 503
# is answered or a feed differs from the brute-force answer. FAULTS_ARGS: e.g. --targets graph,redis
faults: build
	$(PY) -m tests.faults $(FAULTS_ARGS)

# The integration, gRPC and end-to-end suites again on the scaled-out stores: two embedded PostgreSQL
# servers with the logical shards split between them (PICTOR_POSTGRES_SERVERS) and a Redis Cluster
# of three masters (PICTOR_REDIS_NODES).
SERVERS_TESTS ?= tests/integration tests/grpc tests/e2e
test-servers: build
	PICTOR_POSTGRES_SERVERS=2 PICTOR_REDIS_NODES=3 $(PY) -m pytest -q $(SERVERS_TESTS)

# Schemathesis against the gateway's /openapi.json for FUZZ_SECONDS: no 5xx, every
# error in the JSON envelope. Starts a private stack (its own ports and data) unless
# FUZZ_GATEWAY names a running one (e.g. FUZZ_GATEWAY=$(GATEWAY) with `make run` up).
fuzz: build
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m services.mesh.fuzz

# Moderators, against a running stack (its PICTOR_* settings): make moderator-grant USERNAME=alice
moderator-grant: $(INSTALLED)
	$(PY) -m services.moderation.admin grant "$(USERNAME)"

moderator-revoke: $(INSTALLED)
	$(PY) -m services.moderation.admin revoke "$(USERNAME)"

# Logical shards, against a running stack: where each lives (make shards), and moving some to
# another database while the platform runs (make shards-move SHARDS=4-7 TO=postgresql://...).
shards: $(INSTALLED)
	$(PY) -m services.mesh.shards show

shards-move: $(INSTALLED)
	$(PY) -m services.mesh.shards move "$(SHARDS)" --to "$(TO)" $(if $(DROP_SOURCE),--drop-source)

# ruff, as configured in pyproject.toml.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

# Generated stubs and descriptor (build/gen) and the Cython hot path.
build: $(INSTALLED)
	$(PY) -m services.mesh.codegen
	$(PY) -m services.mesh.openapi
	$(PY) setup.py -q build_ext --inplace

# Rewrite the checked-in files derived from the service registry (a test
# fails while they are stale): envoy/envoy.yaml, docker-compose.yml and deploy/kubernetes.
generate: $(INSTALLED)
	$(PY) -m services.mesh.envoy_config
	$(PY) -m services.mesh.compose
	$(PY) -m services.mesh.kubernetes

$(INSTALLED): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	# The repo and the generated stubs go on the venv's path (no editable install needed).
	$(PY) -c "import sysconfig, pathlib; root = pathlib.Path.cwd(); \
	pathlib.Path(sysconfig.get_paths()['purelib'], 'pictor.pth').write_text(f'{root}\n{root}/build/gen/python\n')"
	touch $@

clean:
	rm -rf build hotpath/*.c hotpath/*.so

distclean: clean
	rm -rf $(VENV) .pictor
