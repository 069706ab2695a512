"""Lazy package exports: a package's public names are imported on first use, so importing the
package (and `vidlab --help`) does not pull in torch, FastAPI or FAISS."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, **modules: tuple[str, ...]
                 ) -> tuple[list[str], Callable[[str], Any]]:
    """`__all__` and a module-level `__getattr__` (PEP 562) for `package`, whose submodule
    `modules[m]` holds the names `m=(...)` lists; a submodule is imported when one of its names
    is first asked for:

        __all__, __getattr__ = lazy_exports(__name__, model=("EnhanceNet",), video=(...))
    """
    where = {name: f"{package}.{module}" for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return sorted(where), __getattr__
