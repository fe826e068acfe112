#!/usr/bin/env bash
# Changelog fragments are valid, and a release changelog can be generated from them.
#
# 1. `antsibull-changelog lint` on every fragment (and lint-changelog-yaml on changelog.yaml).
# 2. With fragments (changes not released yet): the version in galaxy.yml must not be released yet,
#    and a trial release of it in a temporary copy of the repository (`antsibull-changelog release`
#    consumes the fragments, so it never runs in the work tree) must hold every fragment entry.
#    Without fragments (a release commit): the version in galaxy.yml is released in changelog.yaml,
#    and the committed CHANGELOG.rst is exactly what `antsibull-changelog generate` writes from it.
# Either way, every module of plugins/modules is announced in CHANGELOG.rst.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/.venv/bin
export PATH="$bin:$PATH"

changelog=$(command -v antsibull-changelog || true)
[ -n "$changelog" ] || { echo "antsibull-changelog not found (run scripts/setup.sh)" >&2; exit 1; }

echo "antsibull-changelog lint ($("$changelog" --version))"
"$changelog" lint
"$changelog" lint-changelog-yaml changelogs/changelog.yaml
# A clean clone of a release commit has no fragment (git keeps changelogs/fragments through .keep).
fragment_count=$(find changelogs/fragments -name '*.y*ml' 2>/dev/null | wc -l)
echo "fragments and changelog.yaml: lint OK ($fragment_count fragments)"

version=$(sed -n 's/^version:[[:space:]]*//p' galaxy.yml)
work=$(mktemp -d /tmp/kb-changelog.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The work tree as git would commit it: tracked files plus new files that are not ignored.
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar -c --null -T - -f - | tar -x -C "$work" -f -

released=$("$bin/python" -c 'import sys, yaml; print(" ".join(map(str, (yaml.safe_load(open(sys.argv[1])) or {}).get("releases") or {})))' \
  changelogs/changelog.yaml)
if [ "$fragment_count" -gt 0 ]; then
  case " $released " in
    *" $version "*)
      echo "galaxy.yml: version $version is already released (changelogs/changelog.yaml) but $fragment_count" \
        "fragment(s) are not: set the next version in galaxy.yml" >&2
      exit 1 ;;
  esac
  # A fixed date keeps the output reproducible; ansible-doc finds the plugins of the copy.
  (cd "$work" && "$changelog" release --version "$version" --date 2000-01-01) >"$work.log" 2>&1 \
    || { cat "$work.log" >&2; rm -f "$work.log"; exit 1; }
  what="trial release of v$version in a copy"
else
  case " $released " in
    *" $version "*) ;;
    *) echo "galaxy.yml: version $version has no fragment and no release in changelogs/changelog.yaml:" \
         "add fragments, or run antsibull-changelog release" >&2
       exit 1 ;;
  esac
  (cd "$work" && "$changelog" generate) >"$work.log" 2>&1 || { cat "$work.log" >&2; rm -f "$work.log"; exit 1; }
  if ! diff -u CHANGELOG.rst "$work/CHANGELOG.rst" >"$work.log"; then
    echo "CHANGELOG.rst differs from what antsibull-changelog generate writes from changelogs/changelog.yaml:" >&2
    cat "$work.log" >&2
    rm -f "$work.log"
    exit 1
  fi
  what="release v$version, CHANGELOG.rst as generated"
fi
rm -f "$work.log"
[ -s "$work/CHANGELOG.rst" ] || { echo "antsibull-changelog wrote no CHANGELOG.rst" >&2; exit 1; }

# Every fragment entry (whitespace-normalised) and every module must be in the generated file.
"$bin/python" - "$root/changelogs/fragments" "$work/CHANGELOG.rst" "$version" "$what" <<'PY'
import pathlib
import re
import sys

import yaml

fragments, rst_path, version, what = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
rst = re.sub(r'\s+', ' ', rst_path.read_text())
missing = []
count = 0
for fragment in sorted(fragments.glob('*.y*ml')):
    for section, entries in (yaml.safe_load(fragment.read_text()) or {}).items():
        if section == 'trivial':
            continue
        for entry in ([entries] if isinstance(entries, str) else entries):
            count += 1
            if re.sub(r'\s+', ' ', entry).strip() not in rst:
                missing.append(f'{fragment.name} ({section}): {entry[:70]}...')
# antsibull-changelog adds the modules new in this release from ansible-doc.
for module in sorted(pathlib.Path('plugins/modules').glob('*.py')):
    if f'keybuzz.redis_ha.{module.stem} - ' not in rst:
        missing.append(f'New Modules: keybuzz.redis_ha.{module.stem}')
if f'v{version}' not in rst:
    missing.append(f'no v{version} section')
if missing:
    print('generated CHANGELOG.rst lacks:', *missing, sep='\n  ', file=sys.stderr)
    sys.exit(1)
print(f'CHANGELOG.rst ({what}): all {count} fragment entries and every module present')
PY
echo "changelog: OK"
