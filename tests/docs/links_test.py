#!/usr/bin/python3
"""Every relative link of README.md and docs/*.md resolves: the file (or folder) exists in the
source tree, and an anchor (#...) names a heading of the target Markdown file, as GitHub slugs
headings, or an explicit <a id>/<a name>. Links inside code (fenced or indented blocks, `spans`)
are not links. Also holds the README to its budget of lines.

Usage: links_test.py SOURCE_DIR
"""
import os
import re
import sys

README_BUDGET = 250  # lines: the README is read during an incident

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
EXPLICIT = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def prose_lines(text):
    """The lines of a Markdown file outside code blocks, with inline code removed. An indented
    code block starts with four spaces after a blank line and goes on while lines stay indented
    or blank."""
    fenced = False
    in_code = False
    previous_blank = True
    for number, line in enumerate(text.split("\n"), 1):
        blank = line.strip() == ""
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            in_code = line.startswith("    ") and (previous_blank or in_code) or (in_code and blank)
            if not in_code:
                yield number, re.sub(r"`[^`]*`", "", line)
        previous_blank = blank


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    out = []
    for c in text.lower():
        if c.isalnum() or c in "-_":
            out.append(c)
        elif c == " ":
            out.append("-")
    return "".join(out)


def anchors(path):
    found = set()
    counts = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    fenced = False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        m = HEADING.match(line)
        if m:
            s = slug(m.group(2))
            n = counts.get(s, 0)
            counts[s] = n + 1
            found.add(s if n == 0 else f"{s}-{n}")
    found.update(EXPLICIT.findall(text))
    return found


def main():
    root = os.path.realpath(sys.argv[1])
    files = [os.path.join(root, "README.md")]
    docs = os.path.join(root, "docs")
    files += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    failures = []
    checked = 0
    cache = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        rel = os.path.relpath(path, root)
        for number, line in prose_lines(text):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:, file:
                checked += 1
                where = f"{rel}:{number}: {target}"
                file_part, _, anchor = target.partition("#")
                dest = path if not file_part else os.path.normpath(
                    os.path.join(os.path.dirname(path), file_part))
                if not dest.startswith(root + os.sep) and dest != root:
                    failures.append(f"{where}: leaves the source tree")
                    continue
                if not os.path.exists(dest):
                    failures.append(f"{where}: no such file {os.path.relpath(dest, root)}")
                    continue
                if anchor:
                    if not dest.endswith(".md"):
                        failures.append(f"{where}: an anchor into a file that is not Markdown")
                        continue
                    if dest not in cache:
                        cache[dest] = anchors(dest)
                    if anchor not in cache[dest]:
                        failures.append(
                            f"{where}: no heading or anchor #{anchor} in "
                            f"{os.path.relpath(dest, root)}")
    with open(files[0], encoding="utf-8") as f:
        readme_lines = f.read().count("\n")
    if readme_lines > README_BUDGET:
        failures.append(f"README.md: {readme_lines} lines, over its budget of {README_BUDGET}")
    for failure in failures:
        print("FAIL:", failure)
    if checked == 0:
        print("FAIL: no link found at all: the checker is broken")
        return 1
    print(f"{checked} relative links in {len(files)} files checked; README {readme_lines} lines")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
