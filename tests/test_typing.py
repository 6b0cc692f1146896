"""The type stub of the compiled module declares exactly what the built module has."""
import ast
import pathlib

import nativebp
from nativebp import _core

STUB = pathlib.Path(nativebp.__file__).with_name("_core.pyi")


def _stub_names():
    """The stub's public top-level names, and each class's members including those it inherits
    from the stub's (private, dtype-generic) base classes."""
    tree = ast.parse(STUB.read_text())
    top, own, bases = set(), {}, {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            top.add(node.name)
        if isinstance(node, ast.ClassDef):
            own[node.name] = {n.name if isinstance(n, ast.FunctionDef) else n.target.id for n in node.body
                              if isinstance(n, (ast.FunctionDef, ast.AnnAssign))} - {"__init__"}
            bases[node.name] = [(b.value if isinstance(b, ast.Subscript) else b).id for b in node.bases]

    def members(name):
        return own[name].union(*(members(b) for b in bases[name] if b in own))
    return top, {name: members(name) for name in own if not name.startswith("_")}


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
        assert declared == runtime, f"{name}: add {sorted(runtime - declared)}, remove {sorted(declared - runtime)}"
