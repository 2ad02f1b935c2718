# fellesdrift — the README's quick start: `make up`, `make test`, `make down`.
SHELL := /bin/bash
VENV  := .venv/bin
ENV   ?= lab
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: help setup up down test lint unit e2e doctor lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

setup: ## install what fellesdrift needs (packages, .venv, Pulumi engine); quick when done
	@bash scripts/setup.sh

up: setup ## validate, provision, converge and verify the lab from inventories/
	$(VENV)/fellesdrift up --env $(ENV)

down: setup ## remove everything the lab made: stacks, containers, networks, routes, keys
	$(VENV)/fellesdrift down --env $(ENV)

doctor: setup ## check tools and whether the lab can start a host
	$(VENV)/fellesdrift doctor

test: setup lint ## lint, then unit and end-to-end tests (the e2e tier stands up a small lab)
	$(VENV)/pytest tests/unit tests/e2e || [ $$? -eq 5 ]

lint: ## ruff, mypy (strict), yamllint, ansible-lint (production profile)
	$(VENV)/ruff check fellesdrift stacks tests
	$(VENV)/mypy
	$(VENV)/yamllint -s roles playbooks inventories
	$(VENV)/ansible-lint -q --profile production roles playbooks

unit: setup ## the fast tests only (no lab)
	$(VENV)/pytest tests/unit || [ $$? -eq 5 ]

lock: ## regenerate requirements.lock from pyproject.toml
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install -q -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable > requirements.lock
	rm -rf .lock-venv
