"""Build hook: a wheel carries the Ansible content (sglfleet/_project), so that `pipx install .` and
`pip install .` into any venv run the same playbooks and roles as a checkout. Editable installs
and checkouts read the checkout itself (sglfleet.paths.project_root)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What ansible-playbook and `sglfleet init` read from the project (sglfleet.paths.PROJECT_CONTENT).
CONTENT = ("ansible.cfg", "site.yml", "playbooks", "roles", "plugins", "templates", "inventories")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class BuildWithProject(build_py):
    """build_py, then the project's Ansible content into the package (symlinks resolved)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "sglfleet" / "_project"
        shutil.rmtree(target, ignore_errors=True)  # a file removed from the project leaves too
        for name in CONTENT:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True, ignore=IGNORE)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithProject})
