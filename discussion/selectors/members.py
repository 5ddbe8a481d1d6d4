"""Whose contributions may be shown: the one place that decides what of a withdrawn member
is left out (docs/discussion.md, "Withdrawal"). Every other read module filters with these.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy

from discussion.models import AxisComment, AxisExample
from workshops.models import Membership, Role
from workshops.text import normalize  # noqa: F401  the one label key (NFC, case folded); re-exported

EXCERPTS_PER_LABEL = 5
EXCERPT_CHARS = 400


# --- withdrawal: what of a withdrawn member may still be shown -----------------------------------
#
# The one rule of the Discuss stage (docs/discussion.md, "Withdrawal"): nothing a withdrawn
# member wrote or did is shown — not their picks, labels, comments, the excerpts they attached,
# their votes, ratings or rankings, nor their pseudonym as a card's author or editor. Their
# cards are dealt with once, when they withdraw (services.withdrawal_apply): a card nobody
# else touched leaves the board; a card others worked on stays as the group's, with their text
# replaced. Every read of discussion/selectors/ applies the rule through exactly two helpers:
# `active(prefix)` in a query, `withdrawn(membership)` for a row already in memory (prefetched).


def active(prefix: str = "membership") -> Q:
    """The rule in a query: the member at `prefix` (a relation path to a Membership) has not withdrawn."""
    return Q(**{f"{prefix}__withdrawn_at__isnull": True})


def withdrawn(membership) -> bool:
    """The rule in memory: whether this member has withdrawn (None, a deleted member, has not)."""
    return membership is not None and membership.withdrawn_at is not None


def active_members(workshop):
    """Members whose contributions may be shown: everyone in the workshop who has not withdrawn."""
    return Membership.objects.active().filter(workshop=workshop)


def participants(workshop):
    return active_members(workshop).filter(role=Role.PARTICIPANT).order_by("pseudonym")


def shown_member(membership) -> Membership | None:
    """`membership` if it may be named, None if it is gone or withdrawn (author/editor of a card)."""
    return membership if membership is not None and not withdrawn(membership) else None


def shown_pseudonym(membership) -> str | None:
    """A member's pseudonym where their data may be shown, None for a withdrawn member (or none)."""
    member = shown_member(membership)
    return member.pseudonym if member else None


def visible_examples(axes):
    """Example excerpts of these cards that may be shown: not attached by a withdrawn member, not
    from a withdrawn member's conversation (baseline conversations stay), not a withdrawn
    member's highlight."""
    return (
        AxisExample.objects.filter(active("added_by"), axis__in=axes)
        .filter(Q(message__conversation__is_baseline=True) | active("message__conversation__owner"))
        .filter(active("annotation__membership"))
        .order_by("created_at", "id")
    )


def visible_comments(axes):
    return AxisComment.objects.filter(active(), axis__in=axes).order_by("created_at", "id")


def example_shown(example) -> bool:
    """`visible_examples` for an example already in memory (the board's prefetched cards)."""
    conversation = example.message.conversation
    return (not withdrawn(example.added_by)
            and (conversation.is_baseline or not withdrawn(conversation.owner))
            and (example.annotation is None or not withdrawn(example.annotation.membership)))


# --- export ---------------------------------------------------------------------------------------


# What is shown instead of a withdrawn member's own text (board, results, exports).
WITHDRAWN_TEXT = gettext_lazy("(withdrawn)")
