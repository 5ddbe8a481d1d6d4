"""Studies (workshops sharing a deployment context), where a workshop was copied from, and the
researcher's reading of which final axes of two groups correspond (seed paper, Table 2)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Study(models.Model):
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("short name (used in links)"), max_length=60, unique=True)
    deployment_context = models.TextField(_("deployment context"), max_length=5000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title


class StudyWorkshop(models.Model):
    """A workshop belongs to at most one study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="members")
    workshop = models.OneToOneField("workshops.Workshop", on_delete=models.CASCADE, related_name="study_link")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["added_at", "id"]


class StudyResearcher(models.Model):
    """Access to a whole study: a researcher membership in each of its workshops (present and
    future) is kept by the services, so every page and the API ask the one membership rule."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="researchers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_access")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="study_researcher_unique")]


class WorkshopOrigin(models.Model):
    """A workshop made from another as a template."""

    workshop = models.OneToOneField("workshops.Workshop", on_delete=models.CASCADE, related_name="origin")
    template = models.ForeignKey("workshops.Workshop", null=True, on_delete=models.SET_NULL, related_name="copies")
    template_title = models.CharField(max_length=200)
    copied = models.JSONField(default=dict, help_text=_("What was copied, with counts."))
    # The template's rubrics (current versions), kept for the new group's facilitator to reuse once
    # the new group has its own axes: no axis is ever created in the new workshop from another group's.
    rubrics = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)


class ConversationOrigin(models.Model):
    """A baseline conversation copied from a template workshop's baseline conversation."""

    conversation = models.OneToOneField("llm_gateway.Conversation", on_delete=models.CASCADE, related_name="origin")
    source = models.ForeignKey("llm_gateway.Conversation", null=True, on_delete=models.SET_NULL, related_name="copies")
    source_workshop = models.ForeignKey("workshops.Workshop", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)


class MatchStatus(models.TextChoices):
    SUGGESTED = "suggested", _("Suggested")
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")


class AxisMatch(models.Model):
    """A correspondence between a final axis of one group and one of another: suggested by
    meaning (similarity of name + definition), then confirmed, edited or rejected by a person.
    Nothing is merged: both axes stay as their groups wrote them."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="matches")
    axis_a = models.ForeignKey("discussion.Axis", on_delete=models.CASCADE, related_name="+")
    axis_b = models.ForeignKey("discussion.Axis", on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField(null=True, blank=True, help_text=_("Cosine similarity; empty for a match a person made."))
    suggested_axis_b = models.ForeignKey("discussion.Axis", null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+", help_text=_("The counterpart first suggested, if edited."))
    status = models.CharField(max_length=10, choices=MatchStatus.choices, default=MatchStatus.SUGGESTED)
    note = models.CharField(_("note"), max_length=1000, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "axis_a", "axis_b"], name="axis_match_unique_pair"),
            models.CheckConstraint(condition=~Q(axis_a=F("axis_b")), name="axis_match_two_axes"),
            models.CheckConstraint(condition=Q(status__in=MatchStatus.values), name="axis_match_status_valid"),
            models.CheckConstraint(condition=Q(similarity__isnull=True) | (Q(similarity__gte=-1.0001) & Q(similarity__lte=1.0001)),
                                   name="axis_match_similarity_range"),
        ]
        indexes = [models.Index(fields=["study", "status"])]
