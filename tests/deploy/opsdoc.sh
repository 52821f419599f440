#!/bin/sh
# docs/operations.md cannot drift from the code:
#  1. the config keys it lists (between the config-keys markers, first
#     column, last dotted component) are exactly the keys the parser
#     accepts -- except that keys listed between the config-keys-pending
#     markers (documented ahead of a parser still being merged) may be
#     missing from the parser; once the parser accepts them, this says so;
#  2. the metrics it lists are exactly the metric names in engine/ (`# TYPE`
#     lines and the names handed to the per-operation helper).
# Keys accepted by the parser are read from every engine/**/*.c (override
# with CONF_SOURCES): every string in a `keys[] = {...}` or
# `*settings[] = {...}` array (the allowed keys of a group, or of a sealer
# or keystore type) and the first string of each `{"name", lo, hi, ...}` row
# (the integer tables); plus EXTRA_KEYS, keys the code adds at run time.
# When a new parser pattern appears, extend the patterns in
# keys_from_source below or EXTRA_KEYS.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
EXTRA_KEYS=${EXTRA_KEYS:-"type"}
command -v python3 >/dev/null 2>&1 || { echo "opsdoc: python3 not found; skipping"; exit 77; }
cd "$src" && exec python3 - "${CONF_SOURCES:-}" "$EXTRA_KEYS" <<'PY'
import glob, re, sys

def keys_from_source(paths):
    keys = set()
    for path in paths:
        s = open(path).read()
        for m in re.finditer(r'(?:\bkeys|[a-z_]*settings)\[\]\s*=\s*\{(.*?)\}', s, re.S):
            keys.update(re.findall(r'"([A-Za-z0-9_]+)"', m.group(1)))
        for m in re.finditer(r'^\s*\{"([A-Za-z0-9_]+)",\s*-?\d', s, re.M):
            keys.add(m.group(1))
    return keys

def keys_from_doc(text, marker='config-keys'):
    if '<!-- %s:begin -->' % marker not in text:
        return set()
    block = text.split('<!-- %s:begin -->' % marker)[1].split('<!-- %s:end -->' % marker)[0]
    keys = set()
    for m in re.finditer(r'^\|\s*`([^`]+)`\s*\|', block, re.M):
        keys.add(m.group(1).split('.')[-1].replace('[]', ''))
    return keys

passed = failed = 0
def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    if ok: passed += 1
    else: failed += 1

doc = open('docs/operations.md').read()
sources = sys.argv[1].split() or glob.glob('engine/**/*.c', recursive=True)
code = keys_from_source(sources) | set(sys.argv[2].split())
listed = keys_from_doc(doc)
pending = keys_from_doc(doc, 'config-keys-pending')
check(len(code) > 10, "the parser's keys were found (%d)" % len(code))
missing = code - listed - pending
check(not missing, "every key the parser accepts is in docs/operations.md%s" %
      ("" if not missing else ": missing " + ", ".join(sorted(missing))))
if pending & code - listed:
    print("note: pending keys the parser now accepts (move them to the main table): "
          + ", ".join(sorted(pending & code - listed)))
check(not (listed - code), "every key docs/operations.md lists is accepted by the parser%s" %
      ("" if not (listed - code) else ": unknown " + ", ".join(sorted(listed - code))))

declared = set()
for path in glob.glob('engine/**/*.c', recursive=True):
    text = open(path).read()
    declared.update(re.findall(r'# TYPE (signer_[a-z0-9_]+) ', text))
    # families written through a helper: the name is a string literal
    declared.update(re.sub(r'_(bucket|count|sum)$', '', n)  # histogram series
                    for n in re.findall(r'(?:"|\\n)(signer_[a-z0-9_]+)', text)
                    if n != 'signer_plugin_init')
section = doc.split('## 2. Metrics')[1].split('## 3.')[0]
documented = set(re.findall(r'^\|\s*`(signer_[a-z0-9_]+)`', section, re.M))
check(len(declared) > 5, "the engine's metrics were found (%d)" % len(declared))
check(not (declared - documented), "every metric is documented%s" %
      ("" if not (declared - documented) else ": missing " + ", ".join(sorted(declared - documented))))
check(not (documented - declared), "every documented metric exists%s" %
      ("" if not (documented - declared) else ": unknown " + ", ".join(sorted(documented - declared))))
print("opsdoc: %d passed, %d failed" % (passed, failed))
sys.exit(0 if failed == 0 else 1)
PY
