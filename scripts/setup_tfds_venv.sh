#!/usr/bin/env bash
# Create the separate virtualenv .venv-tfds (repo root) for the tensorflow-datasets path.
#
# Why separate: preparing a data set from local raw files needs register_checksums=True, which
# rewrites the checksum file inside the installed tensorflow_datasets package; that must not
# happen in the project's main .venv. It also keeps TensorFlow out of the main environment.
#
# Installs requirements.txt + requirements-tfds.txt and the earlytrain package (editable).
# Idempotent: a stamp file holds the hash of the requirement files; if it matches and the
# imports work, nothing is done.
#
# Usage: bash scripts/setup_tfds_venv.sh        (env PYTHON selects the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-tfds"
STAMP="$VENV/.earlytrain-tfds-stamp"
PYTHON="${PYTHON:-python3}"

hash="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-tfds.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$hash" && -x "$VENV/bin/python" ]] \
   && "$VENV/bin/python" -c "import tensorflow_datasets, array_record, earlytrain" >/dev/null 2>&1; then
  echo "setup_tfds_venv: $VENV is up to date"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup_tfds_venv: creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
# pip --quiet still repeats one warning per package for index locations missing on some
# machines; drop those lines only (pip's exit status is kept by pipefail).
quiet_pip() {
  "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
# A package pinned in requirements.txt keeps that pin: drop it from the tfds extras, so the
# main pins can move without breaking this environment.
EXTRAS="$(mktemp)"
trap 'rm -f "$EXTRAS"' EXIT
"$PYTHON" - "$ROOT/requirements.txt" "$ROOT/requirements-tfds.txt" > "$EXTRAS" <<'PY'
import re, sys
def name(line):
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#")[0])
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else None
main = {name(l) for l in open(sys.argv[1])} - {None}
for line in open(sys.argv[2]):
    n = name(line)
    if n and n not in main:
        print(line.rstrip())
PY
quiet_pip install --quiet -r "$ROOT/requirements.txt" -r "$EXTRAS"
quiet_pip install --quiet --no-deps -e "$ROOT"
"$VENV/bin/python" -c "import tensorflow_datasets as tfds, array_record, earlytrain; print('setup_tfds_venv: tensorflow-datasets', tfds.__version__)"
echo "$hash" > "$STAMP"
echo "setup_tfds_venv: done ($VENV)"
