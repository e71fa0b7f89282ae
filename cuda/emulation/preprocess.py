#!/usr/bin/env python3
"""The preprocessing step of the CUDA emulator (docs/gpu.md): rewrites the two CUDA constructs that
are not C++ so that a .cu/.cuh file compiles with a host compiler against include/cuda_runtime.h.

    kernel<<<grid, block[, smem[, stream]]>>>(args...);
        -> ::cuemu::launch_impl("kernel", (kernel), ::cuemu::LaunchConfig(grid, block[, ...]),
                                __FILE__, __LINE__, args...);
    extern __shared__ [__align__(n)] T name[];
        -> T* const name = reinterpret_cast<T*>(::cuemu::dynamic_shared_memory());

Comments and string literals are left alone, line numbers are kept (a `#line` directive names the
original file), so compiler messages, emulator reports and sanitizer traces point at the real source.

Usage: preprocess.py INPUT OUTPUT
"""

from __future__ import annotations

import os
import re
import sys

_EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?(?P<type>[A-Za-z_][\w\s:<>,*]*?)\s*"
    r"(?:__align__\s*\(\s*\d+\s*\)\s*)?(?P<name>[A-Za-z_]\w*)\s*\[\s*\]\s*;"
)


class PreprocessError(ValueError):
    pass


def code_mask(text: str) -> str:
    """`text` with every comment and string/character literal replaced by spaces (newlines kept)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise PreprocessError("unterminated /* comment")
            for k in range(i, j + 2):
                if out[k] != "\n":
                    out[k] = " "
            i = j + 2
        elif c in "\"'":
            if c == "'" and i > 0 and (text[i - 1].isalnum()):  # digit separator (1'000)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                if j < n and text[j] == "\n":
                    raise PreprocessError(f"unterminated literal at offset {i}")
                j += 1
            for k in range(i + 1, min(j, n)):
                out[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _kernel_start(mask: str, end: int) -> int:
    """Start of the kernel expression that ends just before `end` (identifiers, ::, template args)."""
    i = end
    while i > 0 and mask[i - 1].isspace():
        i -= 1
    while True:
        if i > 0 and mask[i - 1] == ">":  # template arguments: balance the angle brackets
            depth, i = 0, i - 1
            while i >= 0:
                if mask[i] == ">":
                    depth += 1
                elif mask[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
                i -= 1
            if i < 0:
                raise PreprocessError("unbalanced template arguments before <<<")
        j = i
        while j > 0 and (mask[j - 1].isalnum() or mask[j - 1] == "_"):
            j -= 1
        if j == i:
            raise PreprocessError("no kernel name before <<<")
        i = j
        if i >= 2 and mask[i - 2 : i] == "::":
            i -= 2
            continue
        return i


def _matching(mask: str, start: int, open_c: str, close_c: str) -> int:
    """Index of the bracket closing the one at `start`."""
    depth = 0
    for i in range(start, len(mask)):
        if mask[i] == open_c:
            depth += 1
        elif mask[i] == close_c:
            depth -= 1
            if depth == 0:
                return i
    raise PreprocessError(f"unbalanced {open_c}{close_c} from offset {start}")


def rewrite(text: str) -> str:
    mask = code_mask(text)
    edits = []  # (start, end, replacement)
    for m in _EXTERN_SHARED.finditer(mask):
        typ = " ".join(text[m.start("type") : m.end("type")].split())
        name = m.group("name")
        edits.append(
            (m.start(), m.end(), f"{typ}* const {name} = reinterpret_cast<{typ}*>(::cuemu::dynamic_shared_memory());")
        )
    pos = 0
    while True:
        lt = mask.find("<<<", pos)
        if lt < 0:
            break
        gt = mask.find(">>>", lt + 3)
        if gt < 0:
            raise PreprocessError(f"<<< without >>> at line {text.count(chr(10), 0, lt) + 1}")
        k0 = _kernel_start(mask, lt)
        kernel = " ".join(text[k0:lt].split())
        config = text[lt + 3 : gt].strip()
        p = gt + 3
        while p < len(mask) and mask[p].isspace():
            p += 1
        if p >= len(mask) or mask[p] != "(":
            raise PreprocessError(f"kernel launch without an argument list at line {text.count(chr(10), 0, lt) + 1}")
        close = _matching(mask, p, "(", ")")
        args = text[p + 1 : close]
        sep = ", " if args.strip() else ""
        name = kernel.replace('"', "")
        edits.append(
            (
                k0,
                close + 1,
                f'::cuemu::launch_impl("{name}", ({kernel}), ::cuemu::LaunchConfig({config}), __FILE__, __LINE__{sep}{args})',
            )
        )
        pos = close + 1
    edits.sort()
    out, last = [], 0
    for start, end, rep in edits:
        if start < last:
            raise PreprocessError("overlapping rewrites")
        out.append(text[last:start])
        out.append(rep + "\n" * (text.count("\n", start, end) - rep.count("\n")))  # keep the line numbers
        last = end
    out.append(text[last:])
    return "".join(out)


def main(argv) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    try:
        body = rewrite(text)
    except PreprocessError as exc:
        print(f"{src}: {exc}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{os.path.abspath(src)}"\n')
        f.write(body)
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
