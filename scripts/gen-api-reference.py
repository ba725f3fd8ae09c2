#!/usr/bin/env python3
"""Writes docs/api-reference.md: every service, RPC, message, enum and field of proto/doudi/v1, from the comments in the
.proto files.

    python3 scripts/gen-api-reference.py            # rewrite docs/api-reference.md
    python3 scripts/gen-api-reference.py --check    # exit 1 with a diff if the committed file is stale (CI)

How: `buf build --output -#format=json` compiles proto/ (with source info, so with comments) into a descriptor image
in protobuf's JSON form, which this script reads with the standard library alone. buf is the one pinned tool the
project already uses for lint and breaking-change checks (.ci/check-proto.sh, docs/proto-compat.md): no system protoc
(Debian's 3.21 writes no JSON) and no Python protobuf package are needed. buf is found in $BUF, else installed by
.ci/buf/ensure.sh into tools/buf (npm ci, pinned).

Output is deterministic: files by name, then declaration order; the same proto gives the same bytes.
"""

import difflib
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "docs", "api-reference.md")
PACKAGE = "doudi.v1"

# Descriptor field numbers used in SourceCodeInfo paths (google/protobuf/descriptor.proto).
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE, FILE_SYNTAX, FILE_PACKAGE = 4, 5, 6, 12, 2
MSG_FIELD, MSG_NESTED, MSG_ENUM = 2, 3, 4
ENUM_VALUE = 2
SERVICE_METHOD = 2

SCALARS = {
    "TYPE_DOUBLE": "double", "TYPE_FLOAT": "float", "TYPE_INT64": "int64", "TYPE_UINT64": "uint64",
    "TYPE_INT32": "int32", "TYPE_FIXED64": "fixed64", "TYPE_FIXED32": "fixed32", "TYPE_BOOL": "bool",
    "TYPE_STRING": "string", "TYPE_BYTES": "bytes", "TYPE_UINT32": "uint32", "TYPE_SFIXED32": "sfixed32",
    "TYPE_SFIXED64": "sfixed64", "TYPE_SINT32": "sint32", "TYPE_SINT64": "sint64",
}


def buf_binary():
    if os.environ.get("BUF"):
        return os.environ["BUF"]
    ensure = os.path.join(ROOT, ".ci", "buf", "ensure.sh")
    return subprocess.run(["bash", ensure], check=True, capture_output=True, text=True).stdout.strip()


def image():
    out = subprocess.run(
        [buf_binary(), "build", ".", "--output", "-#format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def comments_of(fd):
    """SourceCodeInfo path → comment text (leading, then trailing), one leading space of each line removed."""
    found = {}
    for loc in fd.get("sourceCodeInfo", {}).get("location", []):
        path = tuple(loc.get("path", []))
        # Detached comments (a blank line before the element) count only for the file header.
        parts = list(loc.get("leadingDetachedComments", [])) if path in ((FILE_SYNTAX,), (FILE_PACKAGE,)) else []
        parts += [loc[k] for k in ("leadingComments", "trailingComments") if loc.get(k)]
        if parts:
            lines = []
            for p in parts:
                if lines:
                    lines.append("")
                lines += [l[1:] if l.startswith(" ") else l for l in p.rstrip("\n").split("\n")]
            found[path] = "\n".join(lines).strip("\n")
    return found


def inline(text):
    """Markdown-safe text outside code spans: angle brackets and asterisks escaped."""
    out = []
    for i, seg in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:
            out.append(seg)
        else:
            out.append(seg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*"))
    return "".join(out)


def block(text):
    """A comment as Markdown paragraphs; runs of lines indented by two or more spaces become a code block."""
    if not text:
        return ["*(no comment)*"]
    out, code = [], []

    def flush():
        if code:
            if out and out[-1] != "":
                out.append("")
            out.extend(["```text", *code, "```", ""])
            code.clear()

    for line in text.split("\n"):
        if line.startswith("  ") and line.strip():
            code.append(line[2:])
            continue
        flush()
        if line.strip() or (out and out[-1] != ""):
            out.append(inline(line))
    flush()
    while out and out[-1] == "":
        out.pop()
    return out


def cell(text):
    if not text:
        return ""
    return inline(" ".join(l.strip() for l in text.split("\n") if l.strip())).replace("|", "\\|")


def anchor(full_name):
    """The id of a type's or file's heading: `doudi.v1.Fact` → `doudi-v1-fact`, `doudi/v1/facts.proto` → `doudi-v1-facts-proto`."""
    return re.sub(r"[./]", "-", full_name).lower()


def type_ref(name):
    name = name.lstrip(".")
    if name.startswith(PACKAGE + "."):
        return f"[`{name[len(PACKAGE) + 1:]}`](#{anchor(name)})"
    return f"`{name}`"


class Reference:
    def __init__(self, files):
        self.files = files
        self.maps = {}  # full name of a map entry message → (key field, value field)
        self.used = {}  # full name of a message → {"Request": [link to `Service.Rpc`, ...], "Response": [...]}
        for fd in files:
            for s in fd.get("service", []):
                for m in s.get("method", []):
                    rpc = f"{s['name']}.{m['name']}"
                    link = f"[`{rpc}`](#{anchor(fd['package'] + '.' + rpc)})"
                    self.used.setdefault(m["inputType"].lstrip("."), {}).setdefault("Request", []).append(link)
                    self.used.setdefault(m["outputType"].lstrip("."), {}).setdefault("Response", []).append(link)
        for fd in files:
            for m, full in self._messages(fd.get("messageType", []), fd["package"]):
                if m.get("options", {}).get("mapEntry"):
                    fields = {f["name"]: f for f in m["field"]}
                    self.maps[full] = (fields["key"], fields["value"])

    def _messages(self, msgs, prefix):
        for m in msgs:
            full = f"{prefix}.{m['name']}"
            yield m, full
            yield from self._messages(m.get("nestedType", []), full)

    def field_type(self, f):
        if f["type"] in ("TYPE_MESSAGE", "TYPE_ENUM"):
            name = f["typeName"].lstrip(".")
            if name in self.maps:
                k, v = self.maps[name]
                return f"map<{self.field_type(k)}, {self.field_type(v)}>".replace("<", "&lt;").replace(">", "&gt;")
            return type_ref(name)
        return f"`{SCALARS[f['type']]}`"

    def label(self, f, oneofs):
        if f["type"] == "TYPE_MESSAGE" and f["typeName"].lstrip(".") in self.maps:
            return ""
        if f.get("label") == "LABEL_REPEATED":
            return "repeated"
        if f.get("proto3Optional"):
            return "optional"
        if "oneofIndex" in f:
            return f"oneof `{oneofs[f['oneofIndex']]['name']}`"
        return ""

    def render(self):
        own = [fd for fd in self.files if fd["name"].startswith("doudi/")]
        own.sort(key=lambda fd: fd["name"])
        out = [
            "# doudi.v1 API reference",
            "",
            "<!-- Generated by scripts/gen-api-reference.py from the comments in proto/doudi/v1/*.proto: do not edit by",
            "     hand. CI (.ci/check-docs.sh) fails when this file is stale; rerun the script and commit the result. -->",
            "",
            "Every service, RPC, message, enum and field of package `doudi.v1`, with the documentation written beside it",
            "in `proto/doudi/v1/`. The rules behind the API (conventions, errors, who may call what) are in",
            "[docs/spec/api.md](spec/api.md); compatibility rules in [docs/proto-compat.md](proto-compat.md). JSON names",
            "are those of the proto3 JSON mapping (grpcurl).",
            "",
            "## Contents",
            "",
        ]
        services = [(fd, i, s) for fd in own for i, s in enumerate(fd.get("service", []))]
        out.append("Services: " + ", ".join(
            f"[{s['name']}](#{anchor(PACKAGE + '.' + s['name'])})" for _, _, s in services) + ".")
        out.append("")
        out.append("Files: " + ", ".join(
            f"[{fd['name'].split('/')[-1]}](#{anchor(fd['name'])})" for fd in own) + ".")
        out.append("")
        out += ["## Services", ""]
        for fd, i, s in services:
            c = comments_of(fd)
            full = f"{PACKAGE}.{s['name']}"
            out += [f'<a id="{anchor(full)}"></a>', "", f"### {full}", "", f"File `proto/{fd['name']}`.", ""]
            out += block(c.get((FILE_SERVICE, i), "")) + [""]
            out += ["| RPC | request | response |", "| --- | --- | --- |"]
            for j, m in enumerate(s.get("method", [])):
                req = ("stream " if m.get("clientStreaming") else "") + type_ref(m["inputType"])
                resp = ("stream " if m.get("serverStreaming") else "") + type_ref(m["outputType"])
                out.append(f"| [{m['name']}](#{anchor(full + '.' + m['name'])}) | {req} | {resp} |")
            out.append("")
            for j, m in enumerate(s.get("method", [])):
                req = ("stream " if m.get("clientStreaming") else "") + m["inputType"].lstrip(".").split(".")[-1]
                resp = ("stream " if m.get("serverStreaming") else "") + m["outputType"].lstrip(".").split(".")[-1]
                out += [f'<a id="{anchor(full + "." + m["name"])}"></a>', "", f"#### {s['name']}.{m['name']}", ""]
                out += [f"`rpc {m['name']}({req}) returns ({resp})`", ""]
                out += block(c.get((FILE_SERVICE, i, SERVICE_METHOD, j), "")) + [""]
        out += ["## Messages and enums, by file", ""]
        for fd in own:
            c = comments_of(fd)
            out += [f'<a id="{anchor(fd["name"])}"></a>', "", f"### {fd['name'].split('/')[-1]}", ""]
            out += [f"File `proto/{fd['name']}`."]
            header = "\n\n".join(c[p] for p in ((FILE_SYNTAX,), (FILE_PACKAGE,)) if p in c)
            if header:
                out += [""] + block(header)
            out.append("")
            for k, e in enumerate(fd.get("enumType", [])):
                out += self.enum(e, fd["package"], (FILE_ENUM, k), c)
            for k, m in enumerate(fd.get("messageType", [])):
                out += self.message(m, fd["package"], (FILE_MESSAGE, k), c)
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n"

    def message(self, m, prefix, path, c):
        full = f"{prefix}.{m['name']}"
        if full in self.maps:
            return []
        out = [f'<a id="{anchor(full)}"></a>', "", f"#### {full[len(PACKAGE) + 1:]}", ""]
        uses = self.used.get(full, {})
        if uses:
            out += ["; ".join(f"{role} of {', '.join(links)}" for role, links in sorted(uses.items())) + ".", ""]
        if c.get(path) or not uses:
            out += block(c.get(path, "")) + [""]
        fields = m.get("field", [])
        if fields:
            oneofs = m.get("oneofDecl", [])
            out += ["| field | # | type | label | JSON | description |", "| --- | --- | --- | --- | --- | --- |"]
            for n, f in enumerate(fields):
                deprecated = " **Deprecated.**" if f.get("options", {}).get("deprecated") else ""
                out.append(
                    f"| `{f['name']}` | {f['number']} | {self.field_type(f)} | {self.label(f, oneofs)} | "
                    f"`{f.get('jsonName', f['name'])}` | {cell(c.get(path + (MSG_FIELD, n), ''))}{deprecated} |"
                )
        else:
            out.append("No fields.")
        out.append("")
        for k, e in enumerate(m.get("enumType", [])):
            out += self.enum(e, full, path + (MSG_ENUM, k), c)
        for k, n in enumerate(m.get("nestedType", [])):
            out += self.message(n, full, path + (MSG_NESTED, k), c)
        return out

    def enum(self, e, prefix, path, c):
        full = f"{prefix}.{e['name']}"
        out = [f'<a id="{anchor(full)}"></a>', "", f"#### enum {full[len(PACKAGE) + 1:]}", ""]
        out += block(c.get(path, "")) + [""]
        out += ["| value | # | description |", "| --- | --- | --- |"]
        for n, v in enumerate(e.get("value", [])):
            out.append(f"| `{v['name']}` | {v.get('number', 0)} | {cell(c.get(path + (ENUM_VALUE, n), ''))} |")
        return out + [""]


def main():
    check = "--check" in sys.argv[1:]
    text = Reference(image()["file"]).render()
    if not check:
        with open(OUT, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(OUT, ROOT)}")
        return 0
    try:
        with open(OUT, encoding="utf-8") as f:
            committed = f.read()
    except FileNotFoundError:
        committed = ""
    if committed == text:
        print("docs/api-reference.md is up to date with proto/")
        return 0
    diff = list(difflib.unified_diff(committed.splitlines(), text.splitlines(), "docs/api-reference.md (committed)",
                                     "docs/api-reference.md (from proto/)", lineterm=""))
    print("\n".join(diff[:80]) + ("\n…" if len(diff) > 80 else ""))
    print("FAIL: docs/api-reference.md is stale: the proto comments or definitions changed. Run\n"
          "  python3 scripts/gen-api-reference.py\nand commit docs/api-reference.md.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
