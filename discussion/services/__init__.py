"""Every write of the Discuss stage. Keyword-only arguments, one transaction each.

Rules checked here (views and the socket consumer only translate input):
- facilitator-only actions refuse anyone else (`NotAllowed`);
- participants write only in the segment that takes their input, while it is open;
- card edits carry the version the writer started from; a stale version raises `Conflict`
  with the current text, so nothing is silently overwritten;
- rankings and ratings refuse axes that are not on the board (merged, removed, or of
  another workshop).
"""

from discussion.services._common import (  # noqa: F401
    WITHDRAWN_TEXT,
    BoardFull,
    Conflict,
    NotAllowed,
    integrity_safe,
    log,
)
from discussion.services.cards import (  # noqa: F401
    axis_add_example,
    axis_archive,
    axis_attach_label,
    axis_comment,
    axis_create,
    axis_merge,
    axis_split,
    axis_unmerge,
    axis_update,
)
from discussion.services.mapjob import (  # noqa: F401
    map_notify,
    map_request,
)
from discussion.services.presence import (  # noqa: F401
    PRESENCE_TTL,
    presence_editing,
    presence_join,
    presence_leave,
    presence_touch,
)
from discussion.services.ratings import (  # noqa: F401
    group_ranking_record,
    individual_ranking_set,
    rating_set,
    segment5_submit,
    vote_set,
)
from discussion.services.session import (  # noqa: F401
    picks_save,
    session_get,
    session_reveal_picks,
    session_set_open,
    session_set_segment,
    session_set_spotlight,
    session_set_timer,
)
from discussion.services.withdrawal import (  # noqa: F401
    on_withdrawal,
    withdrawal_apply,
)

__all__ = [
    "WITHDRAWN_TEXT",
    "BoardFull",
    "Conflict",
    "NotAllowed",
    "integrity_safe",
    "log",
    "axis_add_example",
    "axis_archive",
    "axis_attach_label",
    "axis_comment",
    "axis_create",
    "axis_merge",
    "axis_split",
    "axis_unmerge",
    "axis_update",
    "map_notify",
    "map_request",
    "PRESENCE_TTL",
    "presence_editing",
    "presence_join",
    "presence_leave",
    "presence_touch",
    "group_ranking_record",
    "individual_ranking_set",
    "rating_set",
    "segment5_submit",
    "vote_set",
    "picks_save",
    "session_get",
    "session_reveal_picks",
    "session_set_open",
    "session_set_segment",
    "session_set_spotlight",
    "session_set_timer",
    "on_withdrawal",
    "withdrawal_apply",
]
