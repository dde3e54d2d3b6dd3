"""The names a cell needs from the notebook, found with the AST."""

from __future__ import annotations

import pytest
from intertwin_lab.offload.cellcode import needed_names


@pytest.mark.parametrize(
    "source, needed",
    [
        ("y = x * 2", {"x"}),
        ("x = x + 1", {"x"}),  # the value runs before the target is bound
        ("x += 1", {"x"}),
        ("x = 1\ny = x + 1", set()),
        ("import numpy as np\nz = np.array(a)", {"a"}),
        ("from os import path\np = path.join(d, 'f')", {"d"}),
        ("def f(q):\n    return q + w\nw = 1\nprint(f(v))", {"print", "v"}),
        ("def f():\n    return model.predict(data)\nf()", {"model", "data"}),
        ("class M(Base):\n    size = n\n", {"Base", "n"}),
        ("r = [i * k for i in range(n)]", {"k", "n", "range"}),
        ("for i in items:\n    total = total + i", {"items", "total"}),
        ("if (m := compute()) > 3:\n    print(m)", {"compute", "print"}),
        ("with open(path) as fh:\n    text = fh.read()", {"open", "path"}),
        ("lambda_ = lambda t: t * scale", {"scale"}),
        ("df.loc[0, 'a'] = 1", {"df"}),  # an item assignment reads the object
    ],
)
def test_needed_names(source: str, needed: set[str]) -> None:
    assert needed_names(source) == needed


def test_a_syntax_error_is_pythons() -> None:
    with pytest.raises(SyntaxError):
        needed_names("def broken(:\n")
