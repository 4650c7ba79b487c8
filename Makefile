# ambassador: see README.md. `make demo` and `make test` do all set-up
# (they run `make deps` first).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...
APT_PKGS := redis-server redis-tools rabbitmq-server kcat amqp-tools nutcracker
STATICCHECK_VERSION := v0.8.2

.PHONY: all build deps test test-unit test-e2e bench bench-redis bench-kafka fuzz lint demo clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ambassador ./cmd/ambassador

# deps installs the backend servers and C clients the tests drive, when missing.
deps:
	@missing=""; \
	for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all of $(APT_PKGS) installed"; fi
	$(GO) mod download

# test runs everything: unit tests (with -race where concurrency lives) and
# the end-to-end tests against real redis-server, rabbitmq-server and kfake.
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 10m ./hashring/... ./health/... ./cluster/... ./config/... ./server/... ./protocols/... ./cmd/...
	$(GO) test -count=1 -timeout 12m ./e2e/...

test-unit:
	$(GO) test -race -count=1 ./hashring/... ./health/... ./cluster/... ./config/... ./server/... ./protocols/... ./cmd/...

test-e2e: deps
	$(GO) test -count=1 -timeout 12m -v ./e2e/...

bench: bench-go bench-redis bench-kafka

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./hashring/... ./cluster/... ./protocols/...

bench-redis: deps build
	$(GO) run ./e2e/bench/redisbench

bench-kafka: build
	$(GO) run ./e2e/bench/kafkabench

fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -d' ' -f2); do \
			echo "== $$t $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$t || exit 1; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

demo: deps build
	$(GO) run ./e2e/demo

clean:
	rm -rf bin
