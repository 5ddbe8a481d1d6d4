"""Facilitator commands: one table, whether they arrive over the board socket
(consumers._run, `{"action": name, "data": {...}}`) or the session page's control form
(views.control, through forms.ControlForm.command()). The services check the rights: a
command from anyone but a facilitator is refused there.
"""

from __future__ import annotations

from typing import Callable

from discussion import services


def _segment(workshop, by, data):
    return services.session_set_segment(workshop=workshop, by=by, segment=data.get("segment"),
                                        open=data.get("open", True))


def _open(workshop, by, data):
    return services.session_set_open(workshop=workshop, by=by, open=bool(data.get("open")))


def _reveal(workshop, by, data):
    return services.session_reveal_picks(workshop=workshop, by=by, revealed=bool(data.get("revealed", True)))


def _spotlight(workshop, by, data):
    return services.session_set_spotlight(workshop=workshop, by=by, membership_id=data.get("participant"))


def _timer(workshop, by, data):
    return services.session_set_timer(workshop=workshop, by=by, minutes=data.get("minutes"))


def _ranking(workshop, by, data):
    return services.group_ranking_record(workshop=workshop, by=by, axis_ids=data.get("ids"))


def _map(workshop, by, data):
    return services.map_request(workshop=workshop, by=by, full_layout=bool(data.get("full")))


FACILITATOR: dict[str, Callable] = {
    "segment": _segment,        # {"segment": 1-5, "open": bool}
    "open": _open,              # {"open": bool}
    "reveal": _reveal,          # {"revealed": bool}
    "spotlight": _spotlight,    # {"participant": membership id or null}
    "timer": _timer,            # {"minutes": 0-120}
    "ranking": _ranking,        # {"ids": [axis id, ...]}
    "map.refresh": _map,        # {"full": bool}
}


def run_facilitator(action: str, *, workshop, by, data: dict):
    """Run one facilitator command by its name in FACILITATOR (a KeyError for any other)."""
    return FACILITATOR[action](workshop, by, data)
