"""Where each axis came from (the exports): its sources, history, merges and splits."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Prefetch

from coding.models import Annotation, Code
from discussion.models import Axis, AxisEvent, AxisEventKind, AxisSource, AxisStatus, IndividualRank, Pick
from discussion.selectors.members import WITHDRAWN_TEXT, active, normalize, shown_pseudonym, visible_examples, withdrawn
from discussion.selectors.ratings import group_ranking, likert_distribution
from discussion.selectors.session import active_axes
from workshops.models import Membership, Role


class AxisHistory:
    """Every card of a workshop with its provenance events (three queries, then in memory), as
    the exports show them: pseudonyms only; a withdrawn member's events and cards are left out,
    and so are references to them, so every axis id the export mentions is in the export."""

    def __init__(self, workshop):
        self.axes = {a.pk: a for a in Axis.objects.filter(workshop=workshop)}
        self.members = {m.pk: m for m in Membership.objects.filter(workshop=workshop)}
        self.picks = {pk for pk, m in Pick.objects.filter(membership__workshop=workshop).values_list("pk", "membership_id")
                      if self.pseudonym(m) is not None}
        self.events: dict[int, list[AxisEvent]] = defaultdict(list)
        self.merge_of: dict[int, AxisEvent] = {}  # absorbed card -> the (latest) merge that absorbed it
        self.split_of: dict[int, AxisEvent] = {}  # original card -> its split
        for e in AxisEvent.objects.filter(axis__workshop=workshop).order_by("at", "id"):
            self.events[e.axis_id].append(e)
            if e.kind == AxisEventKind.MERGED:
                self.merge_of[e.data["absorbed"]["axis"]] = e
            elif e.kind == AxisEventKind.SPLIT:
                self.split_of[e.axis_id] = e
        self.merged_from: dict[int, list[int]] = defaultdict(list)
        for a in self.axes.values():
            if a.status == AxisStatus.MERGED and a.merged_into_id:
                self.merged_from[a.merged_into_id].append(a.pk)

    # -- who and what may be shown --
    def pseudonym(self, membership_id) -> str | None:
        return shown_pseudonym(self.members.get(membership_id)) if membership_id else None

    def member_shown(self, membership_id) -> bool:
        """A deleted membership (id gone) is shown as unknown; a withdrawn one is left out."""
        return membership_id is None or self.pseudonym(membership_id) is not None

    def card_shown(self, axis_id) -> bool:
        axis = self.axes.get(axis_id)
        return axis is not None and self.member_shown(axis.created_by_id)

    def ref(self, axis_id) -> int | None:
        return axis_id if axis_id is not None and self.card_shown(axis_id) else None

    def event_shown(self, e: AxisEvent) -> bool:
        if not self.member_shown(e.actor_id):
            return False
        if e.kind == AxisEventKind.MERGED:
            return self.card_shown(e.data["absorbed"]["axis"]) and self.member_shown(e.data["absorbed"].get("created_by"))
        if e.kind == AxisEventKind.UNMERGED:
            return self.card_shown(e.data.get("restored"))
        return True

    # -- one card --
    def event_out(self, e: AxisEvent) -> dict:
        d = e.data
        out = {"event_id": e.pk, "kind": e.kind, "at": e.at.isoformat(), "by": self.pseudonym(e.actor_id),
               "version": d.get("version")}
        if e.kind == AxisEventKind.CREATED:
            out.update(after={"name": d.get("name", ""), "definition": d.get("definition", "")},
                       split_from=self.ref(d.get("split_from")),
                       pick_id=d.get("pick") if d.get("pick") in self.picks else None)
        elif e.kind == AxisEventKind.EDITED:
            out.update(before=d.get("before"), after=d.get("after"))
        elif e.kind == AxisEventKind.MERGED:
            a = d["absorbed"]
            out.update(absorbed_axis_id=a["axis"], before=d.get("before"), after=d.get("after"), absorbed={
                "axis_id": a["axis"], "name": a["name"], "definition": a["definition"],
                "proposed_by": self.pseudonym(a.get("created_by")), "proposed_at": a.get("created_at")})
        elif e.kind == AxisEventKind.UNMERGED:
            out.update(restored_axis_id=d.get("restored"), merge_event_id=d.get("merge_event"),
                       before=d.get("before"), after=d.get("after"))
        elif e.kind == AxisEventKind.SPLIT:
            parts = [p for p in d.get("parts", []) if self.card_shown(p["axis"])]
            out.update(parts_axis_ids=[p["axis"] for p in parts],
                       parts=[{"axis_id": p["axis"], "name": p["name"], "definition": p["definition"]} for p in parts])
        if d.get("backfilled"):
            out["backfilled"] = True
        return out

    # -- whose text: a text a withdrawn member wrote is never shown, also not as the "before" of
    # someone else's later edit (issue: withdrawal removes what they wrote from every export) --
    def withdrawn(self, membership_id) -> bool:
        return membership_id in self.members and self.pseudonym(membership_id) is None

    def _masked(self, text: dict | None, author) -> dict | None:
        if text is None or not self.withdrawn(author):
            return text
        placeholder = str(WITHDRAWN_TEXT)
        return {"name": placeholder, "definition": placeholder if text.get("definition") else ""}

    def _walk(self, axis_id):
        """(event, author of the text before it, author of the text after it), in order."""
        author = self.axes[axis_id].created_by_id if axis_id in self.axes else None
        for e in self.events.get(axis_id, []):
            before_author = author
            if e.kind in (AxisEventKind.CREATED, AxisEventKind.EDITED) or (
                    e.kind in (AxisEventKind.MERGED, AxisEventKind.UNMERGED) and e.data.get("before") != e.data.get("after")):
                author = e.actor_id
            yield e, before_author, author

    def text_author(self, axis_id):
        """Who wrote the card's current name and definition (None: the group, or unknown)."""
        author = self.axes[axis_id].created_by_id if axis_id in self.axes else None
        for _e, _before, after in self._walk(axis_id):
            author = after
        return author

    def shown_text(self, axis_id) -> dict:
        a = self.axes[axis_id]
        return self._masked({"name": a.name, "definition": a.definition}, self.text_author(axis_id))

    def history(self, axis_id) -> list[dict]:
        out = []
        for e, before_author, after_author in self._walk(axis_id):
            if not self.event_shown(e):
                continue
            row = self.event_out(e)
            if "before" in row:
                row["before"] = self._masked(row["before"], before_author)
            if "after" in row:
                row["after"] = self._masked(row["after"], after_author)
            out.append(row)
        return out

    def shown_merged_from(self, axis_id) -> list[int]:
        return [pk for pk in self.merged_from.get(axis_id, []) if self.card_shown(pk)]

    def lineage(self, axis_id) -> list[int]:
        """Every earlier card this one grew from: cards merged into it (and into those), the card
        it was split from (and that card's own lineage)."""
        seen, stack = set(), [axis_id]
        while stack:
            current = stack.pop()
            parents = list(self.shown_merged_from(current))
            origin = self.ref(self.axes[current].split_from_id) if current in self.axes else None
            if origin is not None:
                parents.append(origin)
            for pk in parents:
                if pk not in seen and pk != axis_id:
                    seen.add(pk)
                    stack.append(pk)
        return sorted(seen)

    def contributors(self, axis_id) -> set[int]:
        """Membership ids behind a card: who proposed it or any card of its lineage, and who
        changed any of them (edits, merges, splits, undos)."""
        people = set()
        for pk in [axis_id, *self.lineage(axis_id)]:
            people.add(self.axes[pk].created_by_id)
            people.update(e.actor_id for e in self.events.get(pk, []) if self.event_shown(e))
        return {m for m in people if m is not None and self.pseudonym(m) is not None}

    def participant_pseudonyms(self, membership_ids) -> set[str]:
        return {self.members[m].pseudonym for m in membership_ids if m in self.members and self.members[m].is_participant}

    def card_out(self, axis_id) -> dict:
        a = self.axes[axis_id]
        text = self.shown_text(axis_id)
        return {"axis_id": a.pk, "status": a.status, "name": text["name"], "definition": text["definition"],
                "proposed_by": self.pseudonym(a.created_by_id), "proposed_at": a.created_at.isoformat(),
                "merged_into": self.ref(a.merged_into_id), "split_from": self.ref(a.split_from_id),
                "merged_from": self.shown_merged_from(a.pk), "history": self.history(a.pk)}

    def referenced(self, card: dict) -> set[int]:
        ids = {card["merged_into"], card["split_from"], *card["merged_from"]}
        for e in card["history"]:
            ids.update({e.get("split_from"), e.get("absorbed_axis_id"), e.get("restored_axis_id"), *e.get("parts_axis_ids", [])})
        return {pk for pk in ids if pk is not None}

    def cards_for(self, axis_ids) -> list[dict]:
        """The cards (not among `axis_ids`) that the given axes' provenance refers to, and the
        ones those refer to, until every reference resolves."""
        have, queue, out = set(axis_ids), [], []
        for pk in axis_ids:
            queue.extend(self.lineage(pk))
            queue.extend(self.referenced(self.card_out(pk)))
        while queue:
            pk = queue.pop(0)
            if pk in have or not self.card_shown(pk):
                continue
            have.add(pk)
            card = self.card_out(pk)
            out.append(card)
            queue.extend(self.referenced(card))
        return sorted(out, key=lambda c: c["axis_id"])

    # -- the CSV's self-contained cells --
    def merged_cards(self, axis_id) -> list[dict]:
        """Every card merged into this axis or into a card of its lineage, each with its text,
        author, when and by whom it was merged, and its own history."""
        rows = []
        for pk in self.lineage(axis_id):
            a = self.axes[pk]
            if a.status != AxisStatus.MERGED:
                continue
            merge = self.merge_of.get(pk)
            text = self.shown_text(pk)
            rows.append({"axis_id": pk, "name": text["name"], "definition": text["definition"],
                         "proposed_by": self.pseudonym(a.created_by_id), "proposed_at": a.created_at.isoformat(),
                         "merged_into": self.ref(a.merged_into_id),
                         "merged_at": merge.at.isoformat() if merge else None,
                         "merged_by": self.pseudonym(merge.actor_id) if merge else None,
                         "history": self.history(pk)})
        return rows

    def split_origin(self, axis_id) -> dict | None:
        origin = self.ref(self.axes[axis_id].split_from_id)
        if origin is None:
            return None
        a, split = self.axes[origin], self.split_of.get(origin)
        text = self.shown_text(origin)
        return {"axis_id": a.pk, "name": text["name"], "definition": text["definition"],
                "proposed_by": self.pseudonym(a.created_by_id), "proposed_at": a.created_at.isoformat(),
                "split_at": split.at.isoformat() if split else None,
                "split_by": self.pseudonym(split.actor_id) if split and self.event_shown(split) else None,
                "history": self.history(origin), "split_from": self.split_origin(origin)}


def _provenance_sources() -> Prefetch:
    """An axis's sources with everything axis_provenance shows of them, fetched for all axes at
    once (a constant number of queries however many cards and labels): the label's member, an
    attribute's codes and each code's highlights (active members' only, `members.active`)."""
    shown_annotations = Prefetch("annotations", to_attr="shown_annotations",
                                 queryset=Annotation.objects.filter(active()).select_related("message"))
    return Prefetch("sources", queryset=AxisSource.objects.select_related(
        "attribute__membership", "code__membership", "pick__membership").prefetch_related(
        Prefetch("attribute__codes", to_attr="shown_codes", queryset=Code.objects.filter(active())
                 .select_related("membership").prefetch_related(shown_annotations)),
        Prefetch("code__annotations", to_attr="shown_annotations",
                 queryset=Annotation.objects.filter(active()).select_related("message")),
    ))


def axis_provenance(workshop, history: AxisHistory | None = None) -> list[dict]:
    """For each active axis: sources (codes, attributes, picks) with their excerpts and messages,
    who proposed it, its history (AxisEvent), the cards merged into it and the card it was split
    from (`AxisHistory`).

    Only active members' labels, annotations and events, and pseudonyms only. No query inside
    the loop: sources, codes, highlights and examples are prefetched for all axes.
    """
    axes = list(active_axes(workshop).prefetch_related(_provenance_sources()))
    history = history or AxisHistory(workshop)
    likert = {row["id"]: row for row in likert_distribution(workshop)}
    group = {r.axis_id: r.rank for r in group_ranking(workshop)}
    indiv = defaultdict(list)
    for axis_id, rank in IndividualRank.objects.filter(
        active(), axis__in=axes, membership__role=Role.PARTICIPANT
    ).values_list("axis_id", "rank"):
        indiv[axis_id].append(rank)
    examples_of = defaultdict(list)
    for e in visible_examples(axes).select_related("message"):
        examples_of[e.axis_id].append({"excerpt": e.excerpt, "conversation_id": e.message.conversation_id,
                                       "message_id": e.message_id, "annotation_id": e.annotation_id})
    result = []
    for axis in axes:
        attributes, codes, picks_out, participants_set = [], [], [], set()
        code_ids = set()
        for s in axis.sources.all():
            if s.attribute_id:
                attr = s.attribute
                if attr is None or withdrawn(attr.membership):
                    continue
                participants_set.add(attr.membership.pseudonym)
                attr_codes = []
                for code in attr.shown_codes:
                    code_ids.add(code.pk)
                    attr_codes.append(_code_tree(code))
                attributes.append({"attribute_id": attr.pk, "name": attr.name, "definition": attr.definition,
                                   "participant": attr.membership.pseudonym, "codes": attr_codes})
            elif s.code_id:
                code = s.code
                if code is None or withdrawn(code.membership) or code.pk in code_ids:
                    continue
                code_ids.add(code.pk)
                participants_set.add(code.membership.pseudonym)
                codes.append(_code_tree(code))
            elif s.pick_id:
                pick = s.pick
                if pick is None or withdrawn(pick.membership):
                    continue
                participants_set.add(pick.membership.pseudonym)
                picks_out.append({"pick_id": pick.pk, "name": pick.name, "definition": pick.definition,
                                  "participant": pick.membership.pseudonym, "position": pick.position,
                                  "attribute_id": pick.attribute_id})
        examples = examples_of.get(axis.pk, [])
        labels = [p["name"] for p in picks_out] + [a["name"] for a in attributes] + [c["text"] for c in codes]
        seen, source_labels = set(), []
        for label in labels:
            if normalize(label) not in seen:
                seen.add(normalize(label))
                source_labels.append(label)
        ranks = indiv.get(axis.pk, [])
        lk = likert.get(axis.pk, {"n": 0, "mean": None, "counts": [0] * 5})
        participants_set |= history.participant_pseudonyms(history.contributors(axis.pk))
        result.append({
            "axis_id": axis.pk, "name": axis.name, "definition": axis.definition, "version": axis.version,
            "proposed_by": history.pseudonym(axis.created_by_id), "proposed_at": axis.created_at.isoformat(),
            "group_rank": group.get(axis.pk), "in_group_top_three": bool(group.get(axis.pk) and group[axis.pk] <= 3),
            "likert": {"n": lk["n"], "mean": lk["mean"], "counts": lk["counts"]},
            "mean_individual_rank": round(sum(ranks) / len(ranks), 3) if ranks else None,
            "individual_rank_n": len(ranks),
            "source_labels": source_labels, "participants": sorted(participants_set),
            "merged_from": history.shown_merged_from(axis.pk),
            "split_from": history.ref(axis.split_from_id),
            "lineage": history.lineage(axis.pk),
            "history": history.history(axis.pk),
            "merged_cards": history.merged_cards(axis.pk),
            "split_origin": history.split_origin(axis.pk),
            "picks": picks_out, "attributes": attributes, "codes": codes, "examples": examples,
        })
    return result


def _code_tree(code: Code) -> dict:
    """A code with its highlights (prefetched by `_provenance_sources` as `shown_annotations`)."""
    return {
        "code_id": code.pk, "text": code.text, "participant": code.membership.pseudonym,
        "excerpts": [{"annotation_id": a.pk, "excerpt": a.excerpt, "start": a.start, "end": a.end,
                      "message_id": a.message_id, "conversation_id": a.message.conversation_id}
                     for a in code.shown_annotations],
    }
