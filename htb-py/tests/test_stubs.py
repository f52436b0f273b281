"""The stubs (_htb.pyi) name exactly what the native module has."""

import ast
import pathlib

import htb
from htb import _htb

STUB = pathlib.Path(htb.__file__).with_name("_htb.pyi")
ALIASES = {"ClassId", "Rate", "Size", "Duration", "Address", "PrefixLike", "DropReason", "Packet",
           "Policy"}


def test_py_typed_and_stub_shipped():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_stub_names_exist():
    tree = ast.parse(STUB.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            cls = getattr(_htb, node.name)
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and issubclass(cls, BaseException):
                    # Set on each raised instance (e.code, e.mtu): test_reasm checks them.
                    continue
                if isinstance(item, (ast.FunctionDef, ast.AnnAssign)):
                    attr = item.name if isinstance(item, ast.FunctionDef) else item.target.id
                    assert hasattr(cls, attr), f"{node.name}.{attr}"
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
            assert callable(getattr(_htb, node.name))
        elif isinstance(node, (ast.AnnAssign, ast.Assign)):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            names.add(target.id)
    public = {n for n in dir(_htb) if not n.startswith("_")} | {"__version__"}
    assert public <= names, public - names
    assert set(htb.__all__) <= names - ALIASES
