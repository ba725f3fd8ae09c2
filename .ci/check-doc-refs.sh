#!/usr/bin/env bash
# Every Markdown document the repository's files cite must be in the repository: a partner who receives the
# repository gets every page its comments and docs point to (issue 21 item 6).
#
# Scans every tracked (and new, not ignored) text file except:
#   migrations/       sqlx checksums each migration's text; a comment edit would make every existing database
#                     refuse to start (their references predate docs/spec/ and mean the files now there);
#   tests/fixtures/   output of earlier releases, kept byte for byte;
#   this script       (its comments show the syntax).
# Tokens that name a file the program writes rather than a document are listed in NOT_DOCUMENTS with the reason.
# In each file, every token ending in `.md` (URLs excepted) must name a file that exists, relative to the repository
# root or to the citing file's directory, inside the repository. Where a citation names a section it is checked too:
#   FILE.md §N[.M]     FILE.md has a heading numbered N[.M] ("## 10. Each autumn", "### 7. Reference data");
#   FILE.md "Text"     (also FILE.md, "Text") the quoted text occurs in FILE.md (case, backticks and emphasis
#                      ignored), when the closing quote is on the same line;
#   FILE.md#anchor     FILE.md has a heading with that GitHub anchor.
# Prints every unresolved reference as path:line: message, and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os
import re
import subprocess
import sys

ROOT = os.getcwd()
EXCLUDED_DIRS = ("migrations/", "tests/fixtures/")
EXCLUDED_FILES = {"package-lock.json", "check-doc-refs.sh"}
# (citing file, token): why the token is not a reference to a document.
NOT_DOCUMENTS = {
    ("tests/api/cli.rs", "summary-2023Q2.md"): "the summary file the test expects `doudi export --snapshot` to write",
    # Links the generator writes into docs/api-reference.md, relative to docs/; checked there.
    ("scripts/gen-api-reference.py", "api-reference.md"): "the file the script writes",
    ("scripts/gen-api-reference.py", "spec/api.md"): "a link written into docs/api-reference.md",
    ("scripts/gen-api-reference.py", "proto-compat.md"): "a link written into docs/api-reference.md",
}

files = subprocess.run(
    ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    check=True, capture_output=True,
).stdout.decode().split("\0")

URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s)>\]\"'`]+")
REF = re.compile(r"(?<![\w./-])((?:\.{1,2}/)*[\w][\w./-]*\.md)(?![\w-])")
SECTION = re.compile(r"\s*§\s*(\d+(?:\.\d+)*)")
QUOTE = re.compile(r",?\s*\"([^\"\n]+)\"")
ANCHOR = re.compile(r"#([\w-]+)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def normalize(text):
    text = re.sub(r"[`*_]", "", text).lower()
    return re.sub(r"\s+", " ", text).strip()


def slug(heading):
    s = re.sub(r"[`*]", "", heading).strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


cache = {}


def target_info(path):
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        headings = [m.group(1) for line in text.splitlines() if (m := HEADING.match(line))]
        cache[path] = (normalize(text), headings)
    return cache[path]


def resolve(citing, ref):
    candidates = [os.path.normpath(os.path.join(ROOT, ref))]
    candidates.append(os.path.normpath(os.path.join(ROOT, os.path.dirname(citing), ref)))
    for c in candidates:
        if (c == ROOT or c.startswith(ROOT + os.sep)) and os.path.isfile(c):
            return c
    return None


def numbered(headings, number):
    pat = re.compile(r"^(?:§\s*)?" + re.escape(number) + r"(?:[.)]|\s|$)")
    return any(pat.match(h) for h in headings)


problems = []
checked = 0
for rel in sorted(f for f in files if f):
    if rel.startswith(EXCLUDED_DIRS) or os.path.basename(rel) in EXCLUDED_FILES or not os.path.isfile(rel):
        continue
    try:
        with open(rel, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        continue  # binary
    for no, line in enumerate(lines, 1):
        if ".md" not in line:
            continue
        line = URL.sub(lambda m: " " * len(m.group(0)), line)
        for m in REF.finditer(line):
            ref = m.group(1)
            if (rel, ref) in NOT_DOCUMENTS:
                continue
            checked += 1
            target = resolve(rel, ref)
            if target is None:
                problems.append(f"{rel}:{no}: {ref} is not a file in the repository")
                continue
            text, headings = target_info(target)
            rest = line[m.end():]
            if (s := SECTION.match(rest)) and not numbered(headings, s.group(1)):
                problems.append(f"{rel}:{no}: {ref} has no section {s.group(1)} (no heading numbered so)")
            elif (q := QUOTE.match(rest)) and normalize(q.group(1)) not in text:
                problems.append(f"{rel}:{no}: {ref} does not contain \"{q.group(1)}\"")
            elif (a := ANCHOR.match(rest)) and a.group(1).lower() not in {slug(h) for h in headings}:
                problems.append(f"{rel}:{no}: {ref} has no heading with the anchor #{a.group(1)}")

for p in problems:
    print(p)
if problems:
    print(f"check-doc-refs: {len(problems)} of {checked} Markdown references do not resolve inside the repository")
    sys.exit(1)
print(f"check-doc-refs: all {checked} Markdown references resolve inside the repository")
PY
