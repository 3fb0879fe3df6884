#!/usr/bin/env bash
# Lint and format check (what CI runs before the tests): bash scripts/lint.sh
# Fix locally with: .venv/bin/ruff format . && .venv/bin/ruff check --fix .
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_venv  # .venv only: ruff, pinned in pyproject.toml
cd "$ROOT"
ruff check .
ruff format --check .
