"""Workshops, the people in them, invites, consent, the stage machine and Familiarize content."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Stage(models.TextChoices):
    FAMILIARIZE = "familiarize", _("Familiarize")
    INTERACT = "interact", _("Interact")
    REFLECT = "reflect", _("Reflect")
    DISCUSS = "discuss", _("Discuss")
    EVALUATE = "evaluate", _("Evaluate")
    CLOSED = "closed", _("Closed")


STAGE_ORDER = [Stage.FAMILIARIZE, Stage.INTERACT, Stage.REFLECT, Stage.DISCUSS, Stage.EVALUATE, Stage.CLOSED]


class Role(models.TextChoices):
    FACILITATOR = "facilitator", _("Facilitator")
    PARTICIPANT = "participant", _("Participant")
    RESEARCHER = "researcher", _("Researcher")


PSEUDONYM_PREFIX = {Role.PARTICIPANT: "P", Role.FACILITATOR: "F", Role.RESEARCHER: "R"}


def in_range(field: str, low, high, *, name: str) -> models.CheckConstraint:
    """The check that `field` lies between `low` and `high`, both included."""
    return models.CheckConstraint(condition=Q(**{f"{field}__gte": low, f"{field}__lte": high}), name=name)


class Timestamped(models.Model):
    """When a row was made (`created_at`, which a caller may set) and last saved (`updated_at`)."""

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Workshop(Timestamped):
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("short name (used in links)"), max_length=60, unique=True)
    deployment_context = models.TextField(
        _("deployment context"),
        max_length=5000,
        help_text=_("Who the model serves, where, and for what."),
    )
    audience = models.CharField(_("audience"), max_length=500, blank=True)
    language = models.CharField(_("workshop language"), max_length=10, choices=settings.LANGUAGES, default="en")
    system_prompt = models.TextField(
        _("system prompt for the Interact stage"),
        max_length=8000,
        blank=True,
        help_text=_("Sent to the model with every conversation; participants do not edit it."),
    )
    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices, default=Stage.FAMILIARIZE)
    # The workshop's own content in other languages: {"hi": {"consent_text": "...", ...}}, for
    # the fields in workshops.i18n.TRANSLATABLE_FIELDS; a participant sees their language's text,
    # falling back to the field itself (written in the workshop's language).
    translations = models.JSONField(_("content in other languages"), default=dict, blank=True)
    tell_model_language = models.BooleanField(
        _("tell the model which language each participant writes in"), default=False,
        help_text=_("Adds one line to the system prompt of each participant's conversations."),
    )

    consent_text = models.TextField(_("consent text"), max_length=20000, blank=True)
    orientation_md = models.TextField(_("orientation (Markdown)"), max_length=50000, blank=True)
    practice_text = models.TextField(
        _("practice sample text"),
        max_length=10000,
        blank=True,
        help_text=_("A short text from an unrelated context for participants to code as practice."),
    )
    practice_example_codes = models.TextField(
        _("example codes for the practice text"),
        max_length=5000,
        blank=True,
        help_text=_("One per line: how others might have coded the sample. Shown after practice."),
    )
    readiness_pass_mark = models.PositiveSmallIntegerField(
        _("readiness pass mark (%)"), default=100,
        help_text=_("Share of readiness questions that must be answered correctly."),
    )

    # Settings that later stages read.
    show_model_names = models.BooleanField(
        _("show model names to participants"), default=False,
        help_text=_("Off: participants see blinded labels (Model A, Model B)."),
    )
    share_code_suggestions = models.BooleanField(
        _("suggest other participants' codes while coding"), default=False,
        help_text=_("Off by default: the method avoids priming participants with others' labels."),
    )

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(readiness_pass_mark__lte=100), name="workshop_pass_mark_le_100"
            ),
            models.CheckConstraint(
                condition=Q(stage__in=[s.value for s in Stage]), name="workshop_stage_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def stage_index(self) -> int:
        return STAGE_ORDER.index(Stage(self.stage))


class MembershipQuerySet(models.QuerySet):
    def active(self):
        """Members whose data may be shown: not withdrawn."""
        return self.filter(withdrawn_at__isnull=True)

    def participants(self):
        return self.filter(role=Role.PARTICIPANT)


class Membership(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    # Optional for people who join by link; shown only to the person and the facilitators.
    display_name = models.CharField(_("display name"), max_length=80, blank=True)
    # The person's interface language in this workshop; blank: the workshop's language.
    language = models.CharField(_("your language"), max_length=10, choices=settings.LANGUAGES, blank=True)
    pseudonym = models.CharField(max_length=8)
    invite = models.ForeignKey("Invite", null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships")
    joined_at = models.DateTimeField(default=timezone.now)

    consented_at = models.DateTimeField(null=True, blank=True)
    consent_text_snapshot = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    orientation_done_at = models.DateTimeField(null=True, blank=True)
    practice_done_at = models.DateTimeField(null=True, blank=True)
    readiness_passed_at = models.DateTimeField(null=True, blank=True)
    # Last activity, for the facilitator's dashboard: written at most once a minute per person
    # (and when they open a different page), never once per request; see membership_seen.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_page = models.CharField(max_length=80, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["workshop", "pseudonym"]
        constraints = [
            models.UniqueConstraint(fields=["workshop", "user"], name="membership_one_per_user"),
            models.UniqueConstraint(fields=["workshop", "pseudonym"], name="membership_unique_pseudonym"),
            models.CheckConstraint(condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"),
        ]
        indexes = [models.Index(fields=["workshop", "role"])]

    def __str__(self) -> str:
        return f"{self.pseudonym} ({self.get_role_display()}) in {self.workshop_id}"

    @property
    def is_facilitator(self) -> bool:
        return self.role == Role.FACILITATOR

    @property
    def is_participant(self) -> bool:
        return self.role == Role.PARTICIPANT

    @property
    def is_researcher(self) -> bool:
        return self.role == Role.RESEARCHER

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    @property
    def has_consented(self) -> bool:
        return self.consented_at is not None


def _new_token() -> str:
    return secrets.token_urlsafe(24)


class Invite(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.PARTICIPANT)
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    label = models.CharField(_("label"), max_length=100, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    max_uses = models.PositiveIntegerField(_("number of uses"), default=30)
    uses = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(uses__lte=F("max_uses")), name="invite_uses_within_max"),
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="invite_max_uses_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} invite to {self.workshop_id}"

    def unusable_reason(self, now=None) -> str | None:
        now = now or timezone.now()
        if self.revoked_at:
            return _("This invite link was revoked by the facilitator.")
        if self.expires_at and self.expires_at <= now:
            return _("This invite link has expired.")
        if self.uses >= self.max_uses:
            return _("This invite link has been used as many times as it allows.")
        if self.workshop.stage == Stage.CLOSED:
            return _("This workshop is closed and no longer takes new members.")
        return None


class StageChange(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at"]


class ReadinessQuestion(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="readiness_questions")
    position = models.PositiveSmallIntegerField(default=0)
    prompt = models.CharField(_("question"), max_length=500)
    choices = models.JSONField(_("answer choices"), default=list)
    correct_choice = models.PositiveSmallIntegerField(_("number of the correct choice"), default=0)
    explanation = models.CharField(_("explanation shown after answering"), max_length=1000, blank=True)
    # {"hi": {"prompt": "...", "choices": [...], "explanation": "..."}}: the same question in
    # other languages (same number and order of choices); see workshops.i18n.localize_question.
    translations = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["workshop", "position", "id"]

    def __str__(self) -> str:
        return self.prompt


class ReadinessAttempt(models.Model):
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="readiness_attempts")
    answers = models.JSONField(default=dict)
    correct = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    passed = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(correct__lte=F("total")), name="attempt_correct_le_total")]


class PracticeCode(models.Model):
    """A code a participant wrote on the Familiarize practice text."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="practice_codes")
    excerpt = models.CharField(max_length=2000, blank=True)
    start = models.PositiveIntegerField(null=True, blank=True)
    end = models.PositiveIntegerField(null=True, blank=True)
    code = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__isnull=True) | Q(end__gt=F("start")), name="practice_span_ordered"
            ),
            models.CheckConstraint(condition=~Q(code=""), name="practice_code_not_empty"),
        ]


class Withdrawal(models.Model):
    """The record that a member withdrew (kept even if the membership is later changed)."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="withdrawal")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


JOB_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """Long work a person waits on (the group summary, the affinity map, evaluation runs).

    One model and one life cycle for every kind (workshops/jobs.py): queued -> running (claimed
    by a conditional UPDATE that counts the attempt) -> done | failed. The running task writes
    `heartbeat_at`; the periodic sweeper re-queues a running job whose heartbeat went silent
    (attempts left) or fails it, so no job stays active for good. `attempts` doubles as the
    fencing token: a task only writes while the row still carries its own attempt number.
    """

    Status = JobStatus

    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True, help_text=_("What the job is doing now."))
    fingerprint = models.CharField(max_length=64, blank=True, help_text=_("Identifies the inputs, for reuse."))
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    requested_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text=_("host:pid of the last attempt."))
    worker_pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_le_100"),
            models.CheckConstraint(condition=Q(status__in=[s.value for s in JobStatus]), name="job_status_valid"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="job_max_attempts_ge_1"),
            models.CheckConstraint(condition=Q(attempts__lte=F("max_attempts")), name="job_attempts_le_max"),
        ]
        indexes = [
            models.Index(fields=["workshop", "kind", "-created_at"], name="job_workshop_kind_created"),
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in JOB_ACTIVE

    @property
    def is_stale(self) -> bool:
        """Active, but nothing heard from a worker for longer than JOB_STALE_SECONDS."""
        from workshops import jobs

        return jobs.is_stale(self)


class ReturnCode(models.Model):
    """A person's return code (workshops/auth.py): only its hash is kept; one per person."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="return_code")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
