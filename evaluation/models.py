"""Evaluate: the group's final axes as versioned rubrics, and participants' own ratings of model
answers along them (the human reference set that model judges are checked against).

Rubric versions are immutable once anything has been rated with them: editing a rubric then makes
a new version, and every rating names the version it used (seed paper, section 6)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workshops.models import Timestamped, in_range

SCALE = (1, 2, 3, 4, 5)
POINT_MAX = 500
STATEMENT_MAX = 300
STATEMENTS_MAX = 10


class EvaluationSettings(models.Model):
    """How the rating activity is sampled for one workshop (set by the facilitator)."""

    workshop = models.OneToOneField("workshops.Workshop", on_delete=models.CASCADE, related_name="evaluation")
    answers_per_person = models.PositiveSmallIntegerField(
        _("answers each participant rates"), default=8,
        help_text=_("How many model answers each participant is asked to rate along every axis."))
    raters_per_answer = models.PositiveSmallIntegerField(
        _("people who rate each answer"), default=3,
        help_text=_("Answers are handed out so that each is rated by at least this many people."))
    pairs_per_person = models.PositiveSmallIntegerField(
        _("answer pairs each participant compares"), default=4,
        help_text=_("Pairs of answers to the same question (compare mode in Interact, or two models in a "
                    "comparison) each participant is asked to compare along every axis. 0 turns pairwise "
                    "rating off."))
    include_participant_conversations = models.BooleanField(
        _("rate answers from participants' own conversations"), default=False,
        help_text=_("Off: only the shared baseline conversations are rated. On: answers from other "
                    "participants' conversations are shown too (the question and the answer, never "
                    "who asked) — say so in the consent text first."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            in_range("answers_per_person", 1, 100, name="evaluation_answers_per_person_range"),
            in_range("raters_per_answer", 1, 50, name="evaluation_raters_per_answer_range"),
            models.CheckConstraint(condition=Q(pairs_per_person__lte=100), name="evaluation_pairs_per_person_range"),
        ]

    def __str__(self) -> str:
        return f"evaluation settings of {self.workshop_id}"


class Rubric(models.Model):
    """One rubric per final axis; its text lives in versions."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="rubrics")
    axis = models.OneToOneField("discussion.Axis", on_delete=models.CASCADE, related_name="rubric")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"rubric for axis {self.axis_id}"


class RubricVersion(Timestamped):
    """A rubric's text at one time. `scale` is {"1": "...", ..., "5": "..."}; `examples` a list of
    {"example_id", "polarity" ("high"|"low"), "excerpt"} snapshots of the axis' excerpts;
    `drafted` lists the fields a model proposed that no person has edited or approved yet."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    definition = models.TextField(max_length=5000, blank=True)
    scale = models.JSONField(default=dict)
    should = models.JSONField(default=list)
    should_not = models.JSONField(default=list)
    examples = models.JSONField(default=list)
    drafted = models.JSONField(default=list)
    model_text = models.JSONField(
        default=dict, blank=True,
        help_text=_("Where a model wrote a part: {field: {endpoint, model, drafted_at, reviewed, reviewed_by}}. "
                    "Kept after a person approves or edits it, so exports say what a model drafted."))
    created_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["rubric_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["rubric", "number"], name="evaluation_rubric_version_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="evaluation_rubric_version_number_ge_1"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"

    def in_use(self) -> bool:
        """Something was rated or judged with this version: its text may no longer change."""
        return self.ratings.exists() or self.judge_scores.exists() or self.pair_ratings.exists()

    @property
    def needs_review(self) -> bool:
        """Some part is a model's draft no person has edited or approved yet."""
        return bool(self.drafted)

    @property
    def is_complete(self) -> bool:
        """A rubric can be rated or scored only with a description for every point of the scale."""
        return all(str(self.scale.get(str(p), "")).strip() for p in SCALE)


class RatingItem(models.Model):
    """A model answer in the rating pool of a workshop (sampled once, then handed out)."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="rating_items")
    message = models.ForeignKey("llm_gateway.Message", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["workshop", "message"], name="evaluation_item_unique")]

    def __str__(self) -> str:
        return f"item {self.id} (message {self.message_id})"


class HandedOut(models.Model):
    """What is handed to one participant to rate (an answer, a pair): its place in their list
    (1, 2, ...), when it was handed out and when they finished it (None: not yet)."""

    position = models.PositiveSmallIntegerField()
    assigned_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["membership_id", "position"]

    @staticmethod
    def constraints_named(thing: str, name: str) -> list[models.UniqueConstraint]:
        """A subclass' constraints (its Meta.constraints): each `thing` handed to a member once,
        one thing at each place of their list; named `<name>_unique`, `<name>_position_unique`."""
        return [
            models.UniqueConstraint(fields=[thing, "membership"], name=f"{name}_unique"),
            models.UniqueConstraint(fields=["membership", "position"], name=f"{name}_position_unique"),
        ]


class RatingAssignment(HandedOut):
    """An answer handed to one participant to rate along every axis."""

    item = models.ForeignKey(RatingItem, on_delete=models.CASCADE, related_name="assignments")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="rating_assignments")

    class Meta(HandedOut.Meta):
        constraints = HandedOut.constraints_named("item", "evaluation_assignment")
        indexes = [models.Index(fields=["membership", "done_at"])]

    def __str__(self) -> str:
        return f"assignment of item {self.item_id} to {self.membership_id}"


class Rating(Timestamped):
    """One participant's rating of one answer on one axis: 1–5, or None for "does not apply".
    Kept per annotator; nothing is stored only as an average."""

    item = models.ForeignKey(RatingItem, on_delete=models.CASCADE, related_name="ratings")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="answer_ratings")
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="ratings")
    axis = models.ForeignKey("discussion.Axis", on_delete=models.CASCADE, related_name="answer_ratings")
    score = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["item_id", "axis_id", "membership_id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "membership", "axis"], name="evaluation_rating_unique"),
            models.CheckConstraint(condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                                   name="evaluation_rating_score_1_5"),
        ]
        indexes = [models.Index(fields=["axis", "item"])]

    def __str__(self) -> str:
        return f"{self.membership_id} rated item {self.item_id} on axis {self.axis_id}: {self.score}"


class JudgeRun(models.Model):
    """A model judge scoring answers along the axes' rubrics; each (answer, axis) it scores is one
    JudgeScore. The work is done by the workshop's `judge` job (workshops.jobs: progress, attempts,
    heartbeat, sweep), which scores whatever any run of the workshop still has left."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="judge_runs")
    endpoint_key = models.CharField(max_length=100)
    model_id = models.CharField(max_length=200, blank=True)
    concurrency = models.PositiveSmallIntegerField(default=4)
    last_error = models.CharField(max_length=300, blank=True,
                                  help_text=_("Why the last pass stopped early (the endpoint refused the run)."))
    created_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [in_range("concurrency", 1, 32, name="evaluation_judge_concurrency_range")]

    def __str__(self) -> str:
        return f"judge {self.endpoint_key} on {self.workshop_id}"


class JudgeOutcome(models.TextChoices):
    SCORED = "scored", _("Scored")
    NOT_APPLICABLE = "not_applicable", _("Does not apply")
    UNPARSEABLE = "unparseable", _("Reply could not be read")
    REFUSED = "refused", _("Judge refused")
    FAILED = "failed", _("Endpoint failed")


FINAL_OUTCOMES = (JudgeOutcome.SCORED, JudgeOutcome.NOT_APPLICABLE, JudgeOutcome.UNPARSEABLE, JudgeOutcome.REFUSED)


class JudgeScore(models.Model):
    """One judge's reading of one answer on one axis. Only `scored` rows carry a number; an
    unreadable or refused reply is recorded as such, never turned into a score. A `failed` row
    (the endpoint did not answer) is tried again when the run resumes."""

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="scores")
    item = models.ForeignKey(RatingItem, on_delete=models.CASCADE, related_name="judge_scores")
    axis = models.ForeignKey("discussion.Axis", on_delete=models.CASCADE, related_name="judge_scores")
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="judge_scores")
    outcome = models.CharField(max_length=20, choices=JudgeOutcome.choices)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.TextField(max_length=1000, blank=True)
    error = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "item_id", "axis_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item", "axis"], name="evaluation_judge_score_unique"),
            models.CheckConstraint(
                condition=(Q(outcome="scored", score__gte=1, score__lte=5) | (~Q(outcome="scored") & Q(score__isnull=True))),
                name="evaluation_judge_score_only_when_scored"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} item {self.item_id} axis {self.axis_id}: {self.outcome} {self.score}"


# --- pairwise rating ------------------------------------------------------------------------------

class PairSource(models.TextChoices):
    COMPARE = "compare", _("Compare mode in Interact")
    COMPARISON = "comparison", _("Model comparison")


class PairItem(models.Model):
    """Two answers to the same question, to be compared ("which answer is better on this axis?").

    `first` and `second` are in a fixed canonical order (slot order for compare-mode candidates);
    what a rater saw on the left is recorded per rating (`shown_swapped`), since each rater gets
    their own random order (blinding)."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="pair_items")
    source = models.CharField(max_length=20, choices=PairSource.choices, default=PairSource.COMPARE)
    question = models.ForeignKey("llm_gateway.Message", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="+", help_text=_("The message both answers reply to."))
    first = models.ForeignKey("llm_gateway.Message", on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey("llm_gateway.Message", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["workshop", "first", "second"], name="evaluation_pair_unique"),
            models.CheckConstraint(condition=~Q(first=models.F("second")), name="evaluation_pair_distinct"),
        ]

    def __str__(self) -> str:
        return f"pair {self.id} ({self.first_id} vs {self.second_id})"


class PairAssignment(HandedOut):
    """A pair handed to one participant to compare along every axis (and overall)."""

    item = models.ForeignKey(PairItem, on_delete=models.CASCADE, related_name="assignments")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="pair_assignments")
    swapped = models.BooleanField(default=False, help_text=_("The second answer is shown on the left."))

    class Meta(HandedOut.Meta):
        constraints = HandedOut.constraints_named("item", "evaluation_pair_assignment")

    def __str__(self) -> str:
        return f"pair {self.item_id} for {self.membership_id}"


class PairChoice(models.TextChoices):
    FIRST = "first", _("The first answer")
    SECOND = "second", _("The second answer")
    TIE = "tie", _("Equally good")
    NOT_APPLICABLE = "not_applicable", _("Does not apply")


class PairRating(Timestamped):
    """One participant's choice between the two answers of a pair on one axis (`axis` None: overall).
    `choice` is in the pair's canonical order, whatever side the rater saw each answer on."""

    item = models.ForeignKey(PairItem, on_delete=models.CASCADE, related_name="ratings")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="pair_ratings")
    axis = models.ForeignKey("discussion.Axis", null=True, blank=True, on_delete=models.CASCADE, related_name="pair_ratings")
    rubric_version = models.ForeignKey(RubricVersion, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="pair_ratings")
    choice = models.CharField(max_length=20, choices=PairChoice.choices)
    shown_swapped = models.BooleanField(default=False, help_text=_("The rater saw the second answer on the left."))

    class Meta:
        ordering = ["item_id", "axis_id", "membership_id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "membership", "axis"], condition=Q(axis__isnull=False),
                                    name="evaluation_pair_rating_unique_axis"),
            models.UniqueConstraint(fields=["item", "membership"], condition=Q(axis__isnull=True),
                                    name="evaluation_pair_rating_unique_overall"),
            models.CheckConstraint(condition=Q(axis__isnull=True) | Q(rubric_version__isnull=False),
                                   name="evaluation_pair_rating_axis_has_version"),
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} on pair {self.item_id} axis {self.axis_id}: {self.choice}"


# --- model comparison (Evaluate II) ---------------------------------------------------------------
#
# Fresh answers are stored as llm_gateway Messages in facilitator-owned sandbox conversations (one
# per compared model): sandbox conversations are left out of coding, the rating pool and every
# participant's view, the usage is recorded where all usage is, the Evaluate I judge machinery
# (RatingItem -> Message, JudgeScore) scores them, and a blind A/B test is a PairItem between two
# of these messages.


class Comparison(models.Model):
    """Two or more models answering the same prompts (the workshop's own questions, and prompts
    the facilitator adds), every answer scored along every axis by the chosen judge runs. The
    work is the workshop's `compare` job (workshops.jobs), which resumes where it stopped."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="comparisons")
    title = models.CharField(max_length=200, blank=True)
    judges = models.ManyToManyField(JudgeRun, related_name="comparisons", blank=True)
    concurrency = models.PositiveSmallIntegerField(
        default=4, help_text=_("Answers asked of each model at the same time."))
    ab_opened_at = models.DateTimeField(null=True, blank=True,
                                        help_text=_("When the answer pairs were put up for the participants (blind A/B)."))
    created_by = models.ForeignKey("workshops.Membership", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [in_range("concurrency", 1, 32, name="evaluation_comparison_concurrency_range")]

    def __str__(self) -> str:
        return self.title or f"comparison {self.id}"


class ComparisonModel(models.Model):
    """One compared model: its endpoint, its column, and the sandbox conversation holding its answers
    (prompt i's question at position 2i, the answer at 2i + 1)."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="compared")
    endpoint_key = models.CharField(max_length=100)
    model_id = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField()
    conversation = models.OneToOneField("llm_gateway.Conversation", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["comparison_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "endpoint_key"], name="evaluation_comparison_model_unique"),
            models.UniqueConstraint(fields=["comparison", "position"], name="evaluation_comparison_model_position"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_key} in comparison {self.comparison_id}"


class PromptKind(models.TextChoices):
    BASELINE = "baseline", _("Baseline conversation")
    PARTICIPANT = "participant", _("A participant's conversation")
    EXTRA = "extra", _("Added by the facilitator")


class ComparisonPrompt(models.Model):
    """A prompt every model answers: a question asked in Interact (`source`, its conversation's
    turns before it are sent as context) or a prompt the facilitator added (`source` empty)."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=PromptKind.choices)
    source = models.ForeignKey("llm_gateway.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()

    class Meta:
        ordering = ["comparison_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "position"], name="evaluation_comparison_prompt_position"),
            models.UniqueConstraint(fields=["comparison", "source"], condition=Q(source__isnull=False),
                                    name="evaluation_comparison_prompt_source"),
        ]

    def __str__(self) -> str:
        return f"prompt {self.position} of comparison {self.comparison_id}"


class ComparisonAnswer(models.Model):
    """A model's answer to a prompt: the Message (complete, or failed with its reason)."""

    prompt = models.ForeignKey(ComparisonPrompt, on_delete=models.CASCADE, related_name="answers")
    model = models.ForeignKey(ComparisonModel, on_delete=models.CASCADE, related_name="answers")
    message = models.OneToOneField("llm_gateway.Message", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["prompt_id", "model_id"]
        constraints = [models.UniqueConstraint(fields=["prompt", "model"], name="evaluation_comparison_answer_unique")]

    def __str__(self) -> str:
        return f"answer of {self.model_id} to {self.prompt_id}"
