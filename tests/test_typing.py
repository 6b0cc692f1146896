"""The type stub of the compiled module declares exactly what the built module has."""
import ast
import pathlib

import nativebp
from nativebp import _core

STUB = pathlib.Path(nativebp.__file__).with_name("_core.pyi")


def _stub_names():
    tree = ast.parse(STUB.read_text())
    top, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {n.name if isinstance(n, ast.FunctionDef) else n.target.id for n in node.body
                                  if isinstance(n, (ast.FunctionDef, ast.AnnAssign))} - {"__init__"}
    return top, members


def _public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_stub_and_py_typed_ship_with_the_package():
    assert STUB.is_file() and STUB.with_name("py.typed").is_file()


def test_stub_declares_every_public_name_of_the_compiled_module_and_no_other():
    top, members = _stub_names()
    runtime = _public(_core)
    assert top == runtime, f"add to _core.pyi: {sorted(runtime - top)}; remove: {sorted(top - runtime)}"
    for name, declared in members.items():
        runtime = _public(getattr(_core, name))
        if name == "EngineValueError":
            continue
        base = {"Optimizer32", "Optimizer64"} & {b.__name__ for b in getattr(_core, name).__mro__[1:]}
        inherited = members[base.pop()] if base else set()
        assert declared | inherited == runtime, f"{name}: add {sorted(runtime - declared - inherited)}, " \
                                                f"remove {sorted(declared - runtime)}"
