# UCloud/IM for Knative. `make run` and `make test` are the two set-up commands; see README.md.
SHELL := /bin/bash
export GOTOOLCHAIN ?= local
ENV_DIR ?= .run/cluster

.PHONY: test test-pure run env-up env-down env-status build vet fmt bench bench-short fuzz token logs demo clean

test:
	bash test/run-tests.sh

# The pure tests only, as on a machine with no control plane built: cluster tests skip (seconds, no cluster).
test-pure:
	bash test/run-pure.sh

run:
	bash test/run-local.sh

token:
	@go run ./test/fakecore/cmd/fakecore token -dir .run/core

logs:
	tail -F .run/logs/*.log .run/cluster/logs/*.log

# The walkthrough against a running `make run` (in another terminal).
demo:
	bash test/walkthrough.sh

env-up:
	bash test/env/deps.sh
	go run ./test/env/cmd/localenv up -dir $(ENV_DIR) -detach
	@echo "source $(ENV_DIR)/env.sh to use it; make env-down stops it"

env-down:
	go run ./test/env/cmd/localenv down -dir $(ENV_DIR)

env-status:
	go run ./test/env/cmd/localenv status -dir $(ENV_DIR)

build:
	go build ./...

vet:
	gofmt -l $$(git ls-files '*.go') | (! grep .)
	go vet ./...
	bash test/check-layers.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	bash test/run-bench.sh

# Every benchmark at small sizes, a few seconds each (make test runs it so a broken benchmark fails CI).
bench-short:
	BENCH_SHORT=1 bash test/run-bench.sh

fuzz:
	FUZZTIME=$${FUZZTIME:-60s} bash test/run-fuzz.sh

clean:
	rm -rf .run
