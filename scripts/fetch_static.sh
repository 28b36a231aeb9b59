#!/usr/bin/env bash
# Fetch the static files the built book serves itself, so that its pages work offline:
#
#   MathJax 3   npm package mathjax@3.2.2 -> <repo>/_offline/_static/mathjax/
#
# _config.yml lists _offline under html_extra_path, so Sphinx copies its contents into the built
# HTML (_build/html/_static/mathjax/...), and points mathjax_path at mathjax/tex-mml-chtml.js (the
# bundle Sphinx otherwise loads from a CDN). Only the files the bundle can load are copied: the
# bundle, the TeX/MathML input extensions it autoloads, the CommonHTML output and its fonts, the
# accessibility, menu and speech components, and the licence (about 8 MB).
# (It is not the book root's _static folder on purpose: Jupyter Book adds every .js file it
# finds there to every page, and MathJax has hundreds.)
#
# The package tarball is verified against a pinned sha256 before anything is unpacked; a
# mismatch is an error (exit 1). Idempotent: when the copy is present and every file matches the
# manifest written from the verified tarball, nothing is fetched.
#
# Usage: bash scripts/fetch_static.sh [DEST]        (also: make data, hence make book / make test)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/_offline/_static/mathjax}"
VERSION=3.2.2
TARBALL_SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
# what the copy holds, relative to the package's es5/ folder (plus the package LICENSE)
KEEP=(tex-mml-chtml.js input output/chtml a11y ui adaptors sre)

log() { echo "fetch_static: $*"; }
die() { echo "fetch_static: ERROR: $*" >&2; exit 1; }

STAMP="$DEST/MANIFEST.sha256"
if [[ -f "$STAMP" ]] && head -1 "$STAMP" | grep -q "mathjax@$VERSION $TARBALL_SHA256" \
   && (cd "$DEST" && tail -n +2 MANIFEST.sha256 | sha256sum -c --quiet --strict - >/dev/null 2>&1); then
  log "MathJax $VERSION: present and verified ($DEST), skipped"
  exit 0
fi

command -v npm >/dev/null || die "MathJax needs npm (apt-get install npm)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log "MathJax: npm pack mathjax@$VERSION"
(cd "$WORK" && npm pack --silent "mathjax@$VERSION" >/dev/null) || die "npm pack mathjax@$VERSION failed"
got="$(sha256sum "$WORK/mathjax-$VERSION.tgz" | cut -d' ' -f1)"
[[ "$got" == "$TARBALL_SHA256" ]] \
  || die "sha256 mismatch for mathjax-$VERSION.tgz: expected $TARBALL_SHA256, got $got"
tar -xzf "$WORK/mathjax-$VERSION.tgz" -C "$WORK"

NEW="$DEST.tmp.$$"
rm -rf "$NEW" && mkdir -p "$NEW"
for k in "${KEEP[@]}"; do
  mkdir -p "$NEW/$(dirname "$k")"
  cp -R "$WORK/package/es5/$k" "$NEW/$k"
done
cp "$WORK/package/LICENSE" "$NEW/LICENSE"
chmod -R u+w,a+rX "$NEW"
{
  echo "# mathjax@$VERSION $TARBALL_SHA256 (npm tarball sha256); files:"
  (cd "$NEW" && find . -type f ! -name MANIFEST.sha256 -print0 | sort -z | xargs -0 sha256sum)
} > "$NEW/MANIFEST.sha256"
rm -rf "$DEST" && mkdir -p "$(dirname "$DEST")" && mv "$NEW" "$DEST"
log "MathJax $VERSION: $(du -sh "$DEST" | cut -f1) in $DEST"
log "done"
