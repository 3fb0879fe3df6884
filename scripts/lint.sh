#!/usr/bin/env bash
# Lint and format check (what CI runs before the tests): bash scripts/lint.sh
# Fix locally with: .venv/bin/ruff format . && .venv/bin/ruff check --fix .
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
# The ruff of pyproject.toml's dev extra (the one in .venv), run by uv without building .venv first: on a fresh
# machine the virtualenvs then build in scripts/test.sh, while apt-get installs Chromium and nginx.
ruff="$(grep -o '"ruff[<>=~][^"]*"' pyproject.toml | tr -d '"')"
[ -n "$ruff" ] || die "no ruff requirement in pyproject.toml"
uv tool run -q --from "$ruff" ruff check .
uv tool run -q --from "$ruff" ruff format --check .
