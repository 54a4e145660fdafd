#!/usr/bin/env python3
"""The largest Swift files and functions under ROOT/Sources (default .): lines per file, and lines
per function or initializer (from its `func`/`init` line to its closing brace), the TOP (8) of each,
and how many functions pass 100 lines and files 400. Usage: scripts/code-sizes.py [ROOT] [TOP]"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
top = int(sys.argv[2]) if len(sys.argv) > 2 else 8
decl = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|static|final|override|mutating|nonisolated|convenience|required|@discardableResult)\s+)*(func\s+([A-Za-z_][A-Za-z0-9_]*)|init[?!]?)\s*[(<]')
files, funcs = [], []
for base in ("Sources",):
    for d, _, names in os.walk(os.path.join(root, base)):
        for n in names:
            if not n.endswith(".swift"): continue
            p = os.path.join(d, n); rel = os.path.relpath(p, root)
            lines = open(p, encoding="utf-8").read().split("\n")
            files.append((len(lines), rel))
            typ = None
            for i, line in enumerate(lines):
                m = re.match(r'^\s*(?:public |private |fileprivate |internal |final |indirect )*(?:class|struct|enum|actor|extension)\s+([A-Za-z_][A-Za-z0-9_.]*)', line)
                if m and not line[0:1].isspace(): typ = m.group(1)
                m = decl.match(line)
                if not m: continue
                name = m.group(2) or "init"
                depth, started, j = 0, False, i
                while j < len(lines):
                    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', lines[j].split("//")[0])
                    for c in code:
                        if c == "{": depth += 1; started = True
                        elif c == "}": depth -= 1
                    if started and depth <= 0: break
                    if not started and j > i + 8: break
                    j += 1
                if started: funcs.append((j - i + 1, f"{typ}.{name}" if typ else name, rel))
files.sort(reverse=True); funcs.sort(reverse=True)
print("largest files (lines):")
for n, p in files[:top]: print(f"  {n:5d}  {p}")
print("largest functions (lines):")
for n, f, p in funcs[:top]: print(f"  {n:5d}  {f}  ({p})")
print(f"functions over 100 lines: {sum(1 for n, *_ in funcs if n > 100)}; files over 400 lines: {sum(1 for n, _ in files if n > 400)}")
