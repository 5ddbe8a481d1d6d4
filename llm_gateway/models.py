"""Conversations and messages of the Interact stage, with per-message usage."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="conversations")
    owner = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="conversations")
    endpoint_key = models.CharField(max_length=100, help_text=_("Key of the endpoint in the registry."))
    model_label = models.CharField(max_length=100, blank=True, help_text=_("What participants see: a name or a blinded label."))
    title = models.CharField(max_length=200, blank=True)
    is_baseline = models.BooleanField(default=False, db_index=True)
    is_sandbox = models.BooleanField(default=False, help_text=_("A facilitator's sandbox conversation."))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

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
    updated_at = models.DateTimeField(default=timezone.now, db_index=True,
                                      help_text=_("Last write by the generator: the sweeper uses it to find dead streams."))

    class Meta:
        ordering = ["conversation", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "position"], name="message_unique_position"),
            models.CheckConstraint(condition=Q(role__in=["user", "assistant"]), name="message_role_valid"),
            # One answer in progress per conversation: a double click cannot start two.
            models.UniqueConstraint(fields=["conversation"], condition=Q(status__in=["pending", "streaming"]),
                                    name="message_one_active_per_conversation"),
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

    def __str__(self) -> str:
        return f"Interact settings for {self.workshop_id}"
