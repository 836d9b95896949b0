"""Packaging hook: the wheel carries the repository's top-level sql/, migrations/, scenarios/ and alembic.ini.

The design card keeps those folders at the top of the repository (SPEC 2), outside the Python package, and
setuptools' package-data cannot reach outside a package. So the build copies them into the package as
``chat_rollout/_project/`` (``chat_rollout.PROJECT_ROOT`` points there when no checkout surrounds the package).
An editable install (``pip install -e .``) reads the checkout itself and needs no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("sql", "migrations", "scenarios", "alembic.ini")


class BuildWithProjectFiles(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "chat_rollout" / "_project"
        if target.exists():
            shutil.rmtree(target)
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithProjectFiles})
