#!/usr/bin/env bash
# Vendor the one MathJax component the book's pages load, so math renders offline from a site
# of a few MB instead of the 24 MB MathJax tree: es5/tex-chtml-full.js (TeX input with every
# extension built in, CommonHTML output), the woff-v2 fonts CommonHTML loads from
# [mathjax]/output/chtml/fonts/woff-v2, and MathJax's LICENSE. Taken from the npm package
# mathjax@$VERSION; rerun after changing VERSION and commit book/_static/mathjax/.
set -euo pipefail
VERSION="${MATHJAX_VERSION:-3.2.2}"
cd "$(dirname "$0")/.."
dest=book/_static/mathjax

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null && tar xzf "mathjax-$VERSION.tgz")
pkg="$tmp/package"
got="$(node -p "require('$pkg/package.json').version")"
[ "$got" = "$VERSION" ] || { echo "vendor_mathjax: npm gave mathjax $got, not $VERSION" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest/output/chtml/fonts"
cp "$pkg/LICENSE" "$dest/LICENSE"
cp "$pkg/es5/tex-chtml-full.js" "$dest/tex-chtml-full.js"
cp -r "$pkg/es5/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/woff-v2"
printf 'mathjax %s from npm: es5/tex-chtml-full.js, es5/output/chtml/fonts/woff-v2/, LICENSE (Apache-2.0)\n' \
  "$VERSION" > "$dest/VERSION.txt"
du -sh "$dest"
