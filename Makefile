# dmarcd — the two commands a new user runs are `make run` and `make test`.

GO        ?= go
BIN       := bin/dmarcd
LISTEN    ?= inet:8893@127.0.0.1
STATE_DIR ?= ./var
FUZZTIME  ?= 8s
# Every fuzz target, as package:Target. `make fuzz FUZZTIME=10m` runs them longer.
FUZZ_TARGETS := ./dmarc:FuzzParse ./internal/authres:FuzzParse ./milter:FuzzFromDomains \
	./internal/config:FuzzParse ./internal/config:FuzzIndexLines ./internal/config:FuzzParseOpenDMARC \
	./report/aggregate:FuzzText ./internal/arc:FuzzVerify ./report/failure:FuzzRedact \
	./report/ingest:FuzzParseAggregate ./report/ingest:FuzzParseMessage

.PHONY: all build run test unit fuzz bench lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/dmarcd

# Builds and starts the milter on 127.0.0.1:8893 with the embedded store
# under ./var, ready for Postfix's smtpd_milters = inet:127.0.0.1:8893.
run: build
	mkdir -p $(STATE_DIR)
	./$(BIN) serve -listen $(LISTEN) -state-dir $(STATE_DIR)

# Everything: vet, the race-enabled test suite (end-to-end tests with real
# Postfix included) and a short run of every fuzz target.
test: lint unit fuzz

unit:
	$(GO) test -race -count=1 ./...

# A target that fails without writing a failing input under testdata/fuzz
# hit Go 1.26's race between -fuzztime's deadline and a busy worker
# ("context deadline exceeded", golang/go#75804, fixed in Go 1.27): it is
# run once more. A failing input always fails the run.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; corpus=$$pkg/testdata/fuzz/$$name; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		before=$$(ls $$corpus 2>/dev/null | wc -l); \
		if ! $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; then \
			if [ "$$(ls $$corpus 2>/dev/null | wc -l)" != "$$before" ]; then \
				echo "fuzz $$name: failing input written under $$corpus"; exit 1; \
			fi; \
			echo "fuzz $$name failed without a failing input (golang/go#75804): once more"; \
			$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
		fi; \
	done

# make bench: the load test (internal/loadtest, cmd/milterload) runs the null
# milter, dmarcd and OpenDMARC back to back on a unix socket and on TCP (as
# root, in a network namespace of its own with a DNS server on 127.0.0.1:53;
# without root or /usr/sbin/opendmarc, OpenDMARC is left out) and prints the
# table and ratios; then the cold-cache coalescing test and the Go
# micro-benchmarks. About 8 minutes. BENCHFLAGS="-d 30s" for longer runs,
# BENCHFLAGS="-rounds 3" for a quicker look.
BENCHFLAGS ?=
MICROBENCH := ^Benchmark(Parse|Evaluate|EvaluateWarmCache|LookupTXTHit|LookupTXTHitParallel|ExistsNegativeHit|CacheGC|Ingest|ReportBuild|Write|WriteGzip|FromDomains)$$
bench: build
	$(GO) build -o bin/milterload ./cmd/milterload
	./bin/milterload bench -dmarcd $(BIN) $(BENCHFLAGS)
	@echo; echo "cold cache: 1,000 concurrent lookups of one name make one DNS query:"
	$(GO) test -count=1 -run '^TestConcurrentLookupsShareOneQuery$$' -v ./internal/dnscache
	@echo; echo "micro-benchmarks: record parse, A-R parse, Evaluate, cache hit, full cache GC, store ingest, report build, From parse:"
	$(GO) test -run '^$$' -bench '$(MICROBENCH)' -benchmem ./dmarc ./internal/authres ./internal/dnscache ./report/store ./report/aggregate ./milter

# make soak: dmarcd under steady load for 5 minutes after a minute of
# warm-up, sampling goroutines, heap and RSS through its HTTP listener ([http] pprof);
# fails if either grew. SOAKFLAGS="-duration 30m" for longer.
SOAKFLAGS ?=
.PHONY: soak
soak: build
	$(GO) build -o bin/milterload ./cmd/milterload
	./bin/milterload soak -dmarcd $(BIN) -warmup 1m -duration 5m $(SOAKFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
