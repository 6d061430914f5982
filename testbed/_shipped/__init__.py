"""Files the project ships beside its code: the repository's ``topologies/``,
``experiments/`` and ``traces/`` folders, installed as the packages
``testbed._shipped.topologies`` (and so on) by ``setup.py``. Use :func:`shipped_dir`:
the installed copy when testbed was installed as a package, the checkout's folder in an
editable install or a plain checkout."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

SHIPPED = ("topologies", "experiments", "traces")
CHECKOUT = Path(__file__).resolve().parents[2]


def shipped_dir(name: str) -> Path:
    """The folder of the shipped files ``name`` (one of :data:`SHIPPED`)."""
    if name not in SHIPPED:
        raise ValueError(f"got {name!r}; expected one of {SHIPPED}")
    installed = importlib.resources.files(__name__) / name
    if installed.is_dir() and any(item.is_file() for item in installed.iterdir()):
        return Path(str(installed))
    return CHECKOUT / name


def find_experiment(path: str | Path) -> Path:
    """``path`` if it exists, else the shipped experiment of that name (``quickstart``,
    ``quickstart.yaml`` or ``experiments/quickstart.yaml`` from any folder); ``path``
    again when there is none (its reader then says it is missing)."""
    given = Path(path)
    if given.exists():
        return given
    folder = shipped_dir("experiments")
    for name in (given.name, given.name + ".yaml"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return given
