# Sourced by scripts/demo and scripts/test (from the repository root): makes `uv` available.
# uv comes from PATH, else from a bootstrap venv in the repo (a system pip refuses installs: PEP 668),
# else (no python3-venv) from a user install run as `python3 -m uv` (its script may be off PATH).
if ! command -v uv >/dev/null 2>&1; then
  UV_BIN="$PWD/.venvs/bootstrap/bin/uv"
  if [ -x "$UV_BIN" ] || { python3 -m venv .venvs/bootstrap >/dev/null 2>&1 &&
    .venvs/bootstrap/bin/python -m pip install --quiet uv; }; then
    uv() { "$UV_BIN" "$@"; }
  else
    rm -rf .venvs/bootstrap
    python3 -m pip install --quiet --user --break-system-packages uv || {
      echo "cannot install uv: install it (https://docs.astral.sh/uv/) or python3-venv, then retry" >&2
      exit 1
    }
    uv() { python3 -m uv "$@"; }
  fi
fi
