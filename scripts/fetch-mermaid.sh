#!/usr/bin/env bash
# Put Mermaid's browser bundle where the docs site loads it (docs/assets/javascripts/, git-ignored),
# so the site draws its diagrams without a CDN. Idempotent: does nothing when the file is there.
#
# Material for MkDocs loads Mermaid from a CDN unless `mermaid` is already defined; mkdocs.yml
# lists this file in extra_javascript, which defines it. The bundle is 3.5 MB, too big to commit
# (pre-commit caps added files at 1500 KB), so it comes from the npm registry, pinned and checked.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="11.17.2"
SHA256="581ed7d74bd9048d0e3a91363927d72ef22942d7722546b27f7cc29e35390eb8"
TARGET="docs/assets/javascripts/mermaid.min.js"

if [ -f "$TARGET" ] && echo "$SHA256  $TARGET" | sha256sum --check --status; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-mermaid: npm not found; install Node.js and npm (apt-get install -y npm)" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "mermaid@$VERSION" >/dev/null)
tar -xzf "$work/mermaid-$VERSION.tgz" -C "$work" package/dist/mermaid.min.js
echo "$SHA256  $work/package/dist/mermaid.min.js" | sha256sum --check --status || {
    echo "fetch-mermaid: mermaid@$VERSION does not have the expected SHA-256" >&2
    exit 1
}
mkdir -p "$(dirname "$TARGET")"
mv "$work/package/dist/mermaid.min.js" "$TARGET"
touch "$TARGET"  # the tarball dates its files 1985; make compares mtimes
echo "fetch-mermaid: mermaid $VERSION -> $TARGET"
