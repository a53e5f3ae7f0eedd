"""ansible.builtin.template whose final copy is sglfleet_copy (the role's read answers "no change").

The template is rendered exactly as the builtin renders it (this is the builtin action); only the
copy it ends in is this project's sglfleet_copy, which skips the two remote runs of an unchanged
file when the role's `sglfleet_node_files` read shows the same SHA-1, mode, owner and group.
docs/controller.md, "One read per role".
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action.template import ActionModule as TemplateAction  # type: ignore[import-untyped]

COPY = "ansible.legacy.copy"
FAST_COPY = "sglfleet_copy"


class _ActionLoader:
    """The action loader, handing out sglfleet_copy where the builtin template asks for copy."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def get(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.get(FAST_COPY if name == COPY else name, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Loaders:
    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.action_loader = _ActionLoader(inner.action_loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ActionModule(TemplateAction):  # type: ignore[misc]
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> Any:
        self._shared_loader_obj = _Loaders(self._shared_loader_obj)
        return super().run(tmp, task_vars)
