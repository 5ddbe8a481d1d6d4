"""Discuss: the live session (five segments), group axes on a board, votes, rankings,
Likert ratings, and the affinity map (embedding cache, map versions, points; its jobs are
workshops.models.Job rows of kind `map`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workshops.models import Timestamped, in_range

NAME_MAX = 120
DEFINITION_MAX = 2000
COMMENT_MAX = 2000


class Segment(models.IntegerChoices):
    NOT_STARTED = 0, _("Not started")
    TOP_THREE = 1, _("1 · Individual top three")
    MAP = 2, _("2 · Affinity map")
    PRESENTATIONS = 3, _("3 · Presentations")
    BOARD = 4, _("4 · Group board and ranking")
    RATINGS = 5, _("5 · Individual ratings")


class Session(models.Model):
    """One live session per workshop; the facilitator drives it through the five segments."""

    workshop = models.OneToOneField("workshops.Workshop", on_delete=models.CASCADE, related_name="discussion")
    segment = models.PositiveSmallIntegerField(choices=Segment.choices, default=Segment.NOT_STARTED)
    segment_open = models.BooleanField(default=True, help_text=_("Whether participants may change things now."))
    picks_revealed = models.BooleanField(default=False)
    spotlight = models.ForeignKey(
        "workshops.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timer_ends_at = models.DateTimeField(null=True, blank=True)
    ranking_final_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            in_range("segment", 0, 5, name="session_segment_range"),
        ]


class BoardSequence(models.Model):
    """The board's event counter: +1 in the same transaction as every board change. Every board
    event carries its number, so a client that missed one (a Redis outage) sees the gap and
    re-fetches the board. Its own row, so that saving a Session can never move it back."""

    workshop = models.OneToOneField("workshops.Workshop", on_delete=models.CASCADE, related_name="board_sequence")
    seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"board {self.workshop_id} at {self.seq}"


class SessionEvent(models.Model):
    """Every step of the session as data (segment changes, reveals, merges, final ranking...)."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="discussion_events")
    actor = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["workshop", "created_at"])]


class Pick(models.Model):
    """Segment 1: one of a participant's own top three attributes, with a definition."""

    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="discussion_picks")
    position = models.PositiveSmallIntegerField()
    attribute = models.ForeignKey("coding.Attribute", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(_("name"), max_length=NAME_MAX)
    definition = models.TextField(_("definition"), max_length=DEFINITION_MAX)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["membership", "position"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "position"], name="pick_unique_position"),
            in_range("position", 1, 3, name="pick_position_1_3"),
            models.CheckConstraint(condition=~Q(name=""), name="pick_name_not_empty"),
        ]


class AxisStatus(models.TextChoices):
    ACTIVE = "active", _("On the board")
    MERGED = "merged", _("Merged into another card")
    ARCHIVED = "archived", _("Removed from the board")


class Axis(Timestamped):
    """A card on the group board: a candidate axis with a name and definition."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="axes")
    name = models.CharField(_("name"), max_length=NAME_MAX)
    definition = models.TextField(_("definition"), max_length=DEFINITION_MAX, blank=True)
    status = models.CharField(max_length=10, choices=AxisStatus.choices, default=AxisStatus.ACTIVE)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from")
    split_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="split_into")
    created_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="axis_name_not_empty"),
            models.CheckConstraint(condition=Q(version__gte=1), name="axis_version_positive"),
            models.CheckConstraint(
                condition=~Q(status="merged") | Q(merged_into__isnull=False), name="axis_merged_has_target"
            ),
        ]
        indexes = [models.Index(fields=["workshop", "status"])]

    def __str__(self) -> str:
        return self.name


class AxisEventKind(models.TextChoices):
    CREATED = "created", _("Proposed")
    EDITED = "edited", _("Name or definition edited")
    MERGED = "merged", _("Another card merged into it")
    UNMERGED = "unmerged", _("A merge undone")
    SPLIT = "split", _("Split into new cards")


class AxisEvent(models.Model):
    """The provenance of a card, append-only: written by the services in the same transaction as
    the change it records. `data` per kind (membership ids, never names; docs/discussion.md):
    created {name, definition, pick, split_from}; edited {before, after, version};
    merged {absorbed: snapshot of the absorbed card, before, after, undo: rows to take back};
    unmerged {merge_event, restored, before, after}; split {parts: [{axis, name, definition}]}."""

    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=AxisEventKind.choices)
    actor = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AxisEventKind.values), name="axis_event_kind_known"),
        ]
        indexes = [models.Index(fields=["axis", "kind"])]

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("AxisEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("AxisEvent rows are append-only")


class AxisSource(models.Model):
    """A participant label (code or attribute) that fed a card: provenance."""

    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="sources")
    code = models.ForeignKey("coding.Code", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    attribute = models.ForeignKey("coding.Attribute", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    pick = models.ForeignKey(Pick, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(code__isnull=False, attribute__isnull=True, pick__isnull=True)
                    | Q(code__isnull=True, attribute__isnull=False, pick__isnull=True)
                    | Q(code__isnull=True, attribute__isnull=True, pick__isnull=False)
                ),
                name="axis_source_exactly_one",
            ),
            models.UniqueConstraint(fields=["axis", "code"], name="axis_source_unique_code"),
            models.UniqueConstraint(fields=["axis", "attribute"], name="axis_source_unique_attribute"),
            models.UniqueConstraint(fields=["axis", "pick"], name="axis_source_unique_pick"),
        ]


class AxisExample(models.Model):
    """An example excerpt attached to a card, from the map (an annotation) or a transcript."""

    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="examples")
    annotation = models.ForeignKey("coding.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.ForeignKey("llm_gateway.Message", on_delete=models.CASCADE, related_name="+")
    excerpt = models.TextField(max_length=5000)
    added_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["axis", "annotation"], name="axis_example_unique_annotation"),
            models.CheckConstraint(condition=~Q(excerpt=""), name="axis_example_not_empty"),
        ]


class AxisComment(models.Model):
    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="comments")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="+")
    text = models.TextField(max_length=COMMENT_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="axis_comment_not_empty")]


class GroupVote(models.Model):
    """Segment 4 live vote: a member's place for an axis in their top five (1 = most important)."""

    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="discussion_votes")
    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="votes")
    rank = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["membership", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "rank"], name="vote_unique_rank"),
            models.UniqueConstraint(fields=["membership", "axis"], name="vote_unique_axis"),
            in_range("rank", 1, 5, name="vote_rank_1_5"),
        ]


class GroupRank(models.Model):
    """The group's final top five as recorded by the facilitator (ranks 1-3 are the top three)."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="axis_group_ranks")
    axis = models.OneToOneField(Axis, on_delete=models.CASCADE, related_name="group_rank")
    rank = models.PositiveSmallIntegerField()
    recorded_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workshop", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["workshop", "rank"], name="group_rank_unique"),
            in_range("rank", 1, 5, name="group_rank_1_5"),
        ]


class LikertRating(models.Model):
    """Segment 5: agreement with an axis definition, 1 (strongly disagree) .. 5 (strongly agree)."""

    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="likert_ratings")
    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="ratings")
    value = models.PositiveSmallIntegerField()
    definition_version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "axis"], name="likert_one_per_member_axis"),
            in_range("value", 1, 5, name="likert_value_1_5"),
        ]


class IndividualRank(models.Model):
    """Segment 5: a participant's own ranking of the final axes (1 = most pertinent)."""

    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="axis_ranks")
    axis = models.ForeignKey(Axis, on_delete=models.CASCADE, related_name="individual_ranks")
    rank = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["membership", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "axis"], name="individual_rank_unique_axis"),
            models.UniqueConstraint(fields=["membership", "rank"], name="individual_rank_unique_rank"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="individual_rank_positive"),
        ]


class BoardPresence(models.Model):
    """Who is on the board now (one row per open socket) and which card they edit."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    editing = models.ForeignKey(Axis, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workshop", "last_seen"])]


# --- The affinity map -----------------------------------------------------------------------------


class Embedding(models.Model):
    """Cache: the vector of one normalised text under one model (float32 bytes)."""

    model_name = models.CharField(max_length=300)
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_name", "text_hash"], name="embedding_unique_text")]


class MapVersion(models.Model):
    class Method(models.TextChoices):
        UMAP = "umap", "UMAP"
        PCA = "pca", "PCA"
        INCREMENTAL = "incremental", _("Existing layout, new labels placed")
        EMPTY = "empty", _("No labels")

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="map_versions")
    number = models.PositiveIntegerField()
    method = models.CharField(max_length=20, choices=Method.choices)
    base = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             help_text=_("The version whose fitted model placed this one's points."))
    fitted_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    help_text=_("The version that holds the fitted projector (itself after a full layout)."))
    projector = models.BinaryField(null=True, blank=True)
    params = models.JSONField(default=dict)
    label_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workshop", "-number"]
        constraints = [models.UniqueConstraint(fields=["workshop", "number"], name="map_version_unique_number")]


class MapPoint(models.Model):
    version = models.ForeignKey(MapVersion, on_delete=models.CASCADE, related_name="points")
    key = models.CharField(max_length=200, help_text=_("kind:normalised label"))
    kind = models.CharField(max_length=10)  # code | attribute
    label = models.CharField(max_length=NAME_MAX)
    x = models.FloatField()
    y = models.FloatField()
    cluster = models.IntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="map_point_unique_key")]
