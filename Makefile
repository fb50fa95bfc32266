# dmarcd — the two commands a new user runs are `make run` and `make test`.

GO        ?= go
BIN       := bin/dmarcd
LISTEN    ?= inet:8893@127.0.0.1
STATE_DIR ?= ./var
FUZZTIME  ?= 8s
# Every fuzz target, as package:Target. `make fuzz FUZZTIME=10m` runs them longer.
FUZZ_TARGETS := ./dmarc:FuzzParse ./internal/authres:FuzzParse ./milter:FuzzFromDomains \
	./internal/config:FuzzParse ./internal/config:FuzzIndexLines ./internal/config:FuzzParseOpenDMARC \
	./report/aggregate:FuzzText ./internal/arc:FuzzVerify

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

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
