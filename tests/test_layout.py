"""The layout follows the pipeline: read with `ast`, every import of `src/vidlab` (also those
inside functions) must go the pipeline's way.

    io ← data ← models ← bundle/runtime ← train ← accel  (bundle_schema and runtime_check:
                                                          the checks bundle and runtime run)
                                        ↖ gen, enhance (beside train; they reuse its pieces)
                         serve on bundle/runtime (never train or accel)
                         library beside serve (its predict path; never train or accel)
    cli and quickstart on top; nothing imports them

Checked: 0 imports against that direction, 0 cycles between subpackages or between modules, 0
private names imported across subpackages, and no module outside `data/` (and `io/`, which
decodes, and `enhance/`, which streams whole videos) opening a reader for model input.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vidlab"

BASE = {"vidlab", "errors", "config", "progress", "ort", "plotting", "lazy", "digest"}
"""Top-level modules every part may use: errors, configs, progress bars, ONNX Runtime
sessions, matplotlib, lazy package exports, file hashes — none imports a subpackage."""
BELOW = {
    "io": set(),
    "data": {"io"},
    "models": set(),
    "bundle_schema": set(),
    "bundle": {"data", "models", "bundle_schema"},
    "runtime_check": {"bundle", "models", "data"},
    "runtime": {"bundle", "models", "data", "runtime_check"},
    "train": {"io", "data", "models", "bundle", "runtime"},
    "gen": {"io", "data", "models", "bundle", "runtime", "train"},
    "enhance": {"io", "data", "models", "bundle", "runtime", "train"},
    "accel": {"io", "data", "models", "bundle", "runtime", "train"},
    "serve": {"io", "data", "models", "bundle", "runtime"},
    "library": {"io", "data", "models", "bundle", "runtime", "serve"},
    "quickstart": {"io", "data", "models", "bundle", "runtime", "train", "accel", "serve",
                   "gen", "enhance"},
}
"""What each part may import besides itself and `BASE` (cli and __main__ may import all)."""
TOP = {"cli", "__main__"}
DECODING = {"VideoReader", "get_frames", "iter_frames", "iter_frames_with_time"}
"""Names that open or read a video; only `io`, `data` and `enhance` may use them."""
MAY_DECODE = {"io", "data", "enhance"}


@dataclass(frozen=True)
class Import:
    module: str  # importing module, e.g. "vidlab.serve.predict"
    target: str  # imported module, e.g. "vidlab.data.clips"
    name: str | None  # imported name (from X import name), else None
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part(module: str) -> str:
    """The pipeline part of a module: `vidlab.data.clips` → "data", `vidlab.ort` → "ort"."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "vidlab"


def imports_of(path: Path) -> list[Import]:
    module = module_name(path)
    return imports_in(path.read_text(), module, path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every `vidlab` import of a module's source, wherever it sits (functions included)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, a.name, None, node.lineno) for a in node.names
                      if a.name.split(".")[0] == "vidlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "vidlab":
                found += [Import(module, target, a.name, node.lineno) for a in node.names]
    return found


def all_imports() -> list[Import]:
    return [i for p in sorted(SRC.rglob("*.py")) for i in imports_of(p)]


def resolve(imp: Import, modules: set[str]) -> str:
    """The module an import loads: `from vidlab.data import clips` names a submodule."""
    if imp.name and f"{imp.target}.{imp.name}" in modules:
        return f"{imp.target}.{imp.name}"
    return imp.target


def modules() -> set[str]:
    return {module_name(p) for p in SRC.rglob("*.py")}


def where(imp: Import) -> str:
    return f"{imp.module}:{imp.line} imports {imp.target}{'.' + imp.name if imp.name else ''}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_import_goes_the_pipelines_way():
    wrong = []
    for imp in all_imports():
        src, dst = part(imp.module), part(imp.target)
        if src == dst or dst in BASE or src in TOP:
            continue
        if dst in TOP or src in BASE or dst not in BELOW.get(src, set()):
            wrong.append(where(imp))
    assert wrong == [], "imports against the pipeline:\n" + "\n".join(wrong)


def test_no_cycle_between_parts_or_between_modules():
    known = modules()
    parts: dict[str, set[str]] = defaultdict(set)
    mods: dict[str, set[str]] = defaultdict(set)
    for imp in all_imports():
        target = resolve(imp, known)
        if part(imp.module) != part(target):
            parts[part(imp.module)].add(part(target))
        # a module may import its own package (`vidlab.models` from `vidlab.models.registry`)
        if target in known and target != imp.module and not imp.module.startswith(target + "."):
            mods[imp.module].add(target)
    assert cycles(parts) == []
    assert cycles(mods) == []


def test_no_private_name_is_imported_across_parts():
    wrong = [where(i) for i in all_imports() if part(i.module) != part(i.target)
             and ((i.name or "").startswith("_") or any(p.startswith("_") and p != "__init__"
                                                        for p in i.target.split(".")))]
    assert wrong == []


def test_only_data_opens_a_video_for_model_input():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        if part(module) in MAY_DECODE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = (node.attr if isinstance(node, ast.Attribute) else
                    node.id if isinstance(node, ast.Name) else
                    next((a.name for a in node.names if a.name.split(".")[-1] in DECODING
                          or a.name == "av"), None)
                    if isinstance(node, ast.Import | ast.ImportFrom) else None)
            if name in DECODING or name == "av":
                wrong.append(f"{module}:{node.lineno} uses {name}")
    assert wrong == [], "decoding outside data/:\n" + "\n".join(wrong)


def test_the_checker_sees_imports_inside_functions_and_relative_ones():
    """The rules above would be void if imports inside functions were missed."""
    source = ("from . import clips\n"
              "def later():\n    from vidlab.cli.common import console\n"
              "    import vidlab.train.run\n")
    found = {(i.target, i.name) for i in imports_in(source, "vidlab.data.fake")}
    assert found == {("vidlab.data", "clips"), ("vidlab.cli.common", "console"),
                     ("vidlab.train.run", None)}
    assert ("vidlab.bundle", "vidlab.models") in {(i.module, i.target) for i in all_imports()}


def test_cheap_entry_points_stay_cheap():
    """`vidlab --help` and `import vidlab.accel` / `serve` / `train` / `gen` / `library` /
    `enhance.gate` load no torch."""
    code = ("import sys, vidlab.cli, vidlab.accel, vidlab.serve, vidlab.train, vidlab.gen, "
            "vidlab.library, vidlab.enhance.gate; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_the_architecture_page_states_the_rules_enforced_here():
    """docs/architecture.md's table of what each part may import is `BELOW`, exactly."""
    page = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    stated = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].strip("`") in BELOW:
            stated[cells[0].strip("`")] = {c.strip(" `") for c in cells[2].split(",")} - {"—"}
    assert stated == BELOW
