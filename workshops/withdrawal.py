"""What each app does when a member withdraws.

`services.membership_withdraw` marks the membership withdrawn; every read then leaves the
member's data out (selectors filter on `withdrawn_at`). What was computed or arranged before
(a cached group summary, cards on the live board) is handled by the hooks apps register in
their AppConfig.ready():
    register(func)
where func(membership) runs inside the withdrawal's transaction (queue work with
transaction.on_commit). Hooks must be idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

_hooks: list[Callable] = []


def register(func: Callable) -> None:
    if func not in _hooks:
        _hooks.append(func)


def run(membership) -> None:
    for func in _hooks:
        func(membership)
