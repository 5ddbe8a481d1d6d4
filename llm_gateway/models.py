"""Conversations and messages of the Interact stage, with per-message usage."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workshops.models import Timestamped


class CompareMode(models.TextChoices):
    OFF = "off", _("Off: one answer per message")
    MODELS = "models", _("Two models side by side (blinded)")
    DIVERSE = "diverse", _("Several deliberately different answers from one model")


DEFAULT_COMPARE_VARIANTS = "\n".join([
    "Answer briefly and neutrally, the way a standard textbook would.",
    "Answer from the point of view of the people and places the question is about, including views that "
    "textbooks often leave out.",
    "Answer cautiously: say what is uncertain or disputed, and what the reader should check for themselves.",
    "Answer directly and take a clear position where the question invites one, and explain why.",
])


class Conversation(Timestamped):
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="conversations")
    owner = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="conversations")
    endpoint_key = models.CharField(max_length=100, help_text=_("Key of the endpoint in the registry."))
    model_label = models.CharField(max_length=100, blank=True, help_text=_("What participants see: a name or a blinded label."))
    title = models.CharField(max_length=200, blank=True)
    is_baseline = models.BooleanField(default=False, db_index=True)
    is_sandbox = models.BooleanField(default=False, help_text=_("A facilitator's sandbox conversation."))
    compare_mode = models.CharField(
        max_length=10, choices=CompareMode.choices, default=CompareMode.OFF,
        help_text=_("Fixed when the conversation starts: each message gets several answers to choose from."))

    @property
    def is_compare(self) -> bool:
        return self.compare_mode != CompareMode.OFF

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["workshop", "owner"]), models.Index(fields=["workshop", "is_baseline"])]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class MessageRole(models.TextChoices):
    USER = "user", _("Participant")
    ASSISTANT = "assistant", _("Model")


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the model")
    STREAMING = "streaming", _("Answering")
    COMPLETE = "complete", _("Complete")
    INTERRUPTED = "interrupted", _("Interrupted")
    FAILED = "failed", _("Failed")
    SUPERSEDED = "superseded", _("Replaced by a newer answer")


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    position = models.PositiveIntegerField(help_text=_("Order within the conversation."))
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Usage (assistant messages). None means unknown, never invented.
    endpoint_key = models.CharField(max_length=100, blank=True)
    model_id = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # Added by the Interact stage.
    error_kind = models.CharField(max_length=40, blank=True, help_text=_("Classified failure: auth, timeout_first_token, ..."))
    attempts = models.PositiveSmallIntegerField(default=0, help_text=_("Calls made for this answer (retries and fallback)."))
    stream_chunks = models.PositiveIntegerField(null=True, blank=True,
                                                help_text=_("Text chunks streamed (a count of events, not of tokens)."))
    finish_reason = models.CharField(max_length=20, blank=True,
                                     help_text=_("Why the model stopped, as the endpoint said: stop, length (cut off "
                                                 "at the length limit), content_filter … Empty: unknown."))
    updated_at = models.DateTimeField(default=timezone.now, db_index=True,
                                      help_text=_("Last write by the generator: the sweeper uses it to find dead streams."))
    # Compare mode: the answers to one message are candidates, shown side by side in `slot` order.
    is_candidate = models.BooleanField(default=False, help_text=_("One of several answers offered for a choice."))
    slot = models.PositiveSmallIntegerField(default=0, help_text=_("Column of a candidate answer (0 otherwise)."))
    variant = models.CharField(max_length=300, blank=True,
                               help_text=_("The instruction added to the system prompt for this candidate."))

    @property
    def cut_off(self) -> bool:
        """The answer ended because it reached the length limit (max_tokens), not by itself."""
        return self.finish_reason == "length"

    @property
    def candidate_label(self) -> str:
        return _("Answer %(n)s") % {"n": self.slot + 1}

    class Meta:
        ordering = ["conversation", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "position"], name="message_unique_position"),
            models.CheckConstraint(condition=Q(role__in=["user", "assistant"]), name="message_role_valid"),
            # One answer in progress per conversation (per column in compare mode): a double
            # click cannot start two.
            models.UniqueConstraint(fields=["conversation", "slot"], condition=Q(status__in=["pending", "streaming"]),
                                    name="message_one_active_per_slot"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="message_status_updated")]

    def __str__(self) -> str:
        return f"{self.role} #{self.position} in {self.conversation_id}"


# --- Added by the Interact stage ----------------------------------------------------------------

class WorkshopModel(models.Model):
    """An endpoint a workshop offers, with the blinded label participants see."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="offered_models")
    endpoint_key = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    blind_label = models.CharField(max_length=40, help_text=_("e.g. Model A"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workshop", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workshop", "endpoint_key"], name="workshopmodel_unique_endpoint"),
            models.UniqueConstraint(fields=["workshop", "blind_label"], name="workshopmodel_unique_label"),
        ]

    def __str__(self) -> str:
        return f"{self.blind_label} = {self.endpoint_key}"


class GatewaySettings(models.Model):
    """Per-workshop limits for the Interact stage."""

    workshop = models.OneToOneField("workshops.Workshop", on_delete=models.CASCADE, related_name="gateway_settings")
    token_budget = models.PositiveIntegerField(
        _("token budget for the whole workshop"), null=True, blank=True,
        help_text=_("Prompt plus completion tokens across all conversations. Empty: no limit."),
    )
    max_answer_tokens = models.PositiveIntegerField(
        _("longest answer (tokens)"), null=True, blank=True,
        help_text=_("Sent as max_tokens. Empty: the endpoint's default."),
    )
    compare_mode = models.CharField(_("compare mode"), max_length=10, choices=CompareMode.choices,
                                    default=CompareMode.OFF)
    compare_variants = models.TextField(
        _("instructions for different answers"), blank=True, default=DEFAULT_COMPARE_VARIANTS,
        help_text=_("One per line; each answer gets one of them added to the system prompt."))
    compare_count = models.PositiveSmallIntegerField(_("answers per message"), default=2)

    def __str__(self) -> str:
        return f"Interact settings for {self.workshop_id}"


class Preference(models.Model):
    """A participant's choice among the candidate answers to one of their messages (compare
    mode): one of them, or none. `candidates` keeps the answers' ids in the order shown."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="preferences")
    question = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="preference")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="preferences")
    mode = models.CharField(max_length=10, choices=CompareMode.choices)
    candidates = models.JSONField(default=list, help_text=_("Candidate message ids in the order shown."))
    chosen = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty until the participant chooses."))
    note = models.CharField(max_length=500, blank=True, help_text=_("The participant's optional reason."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "question"]

    @property
    def none_chosen(self) -> bool:
        return self.decided_at is not None and self.chosen_id is None

    def __str__(self) -> str:
        return f"Preference on {self.question_id}: {self.chosen_id or ('none' if self.decided_at else 'undecided')}"
