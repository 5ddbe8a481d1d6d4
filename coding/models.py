"""Reflect: codes (rows, per participant), annotations on excerpt spans, attributes."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workshops.models import Timestamped

CODE_MAX_LENGTH = 120
MEMO_MAX_LENGTH = 5000


class Code(Timestamped):
    """One participant's code: their own words for a value they saw in model behaviour."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="codes")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="codes")
    text = models.CharField(_("code"), max_length=CODE_MAX_LENGTH)
    normalized = models.CharField(max_length=CODE_MAX_LENGTH, editable=False)
    memo = models.TextField(_("definition or memo"), max_length=MEMO_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["text"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "normalized"], name="code_unique_per_member"),
            models.CheckConstraint(condition=~Q(normalized=""), name="code_not_empty"),
            models.CheckConstraint(condition=~Q(text=""), name="code_text_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("memo"), MEMO_MAX_LENGTH), name="code_memo_length"
            ),
        ]
        indexes = [models.Index(fields=["workshop", "normalized"])]

    def __str__(self) -> str:
        return self.text


class Annotation(Timestamped):
    """A character span of a model message, with one or more codes and an optional memo."""

    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="annotations")
    message = models.ForeignKey("llm_gateway.Message", on_delete=models.CASCADE, related_name="annotations")
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    excerpt = models.TextField()
    memo = models.TextField(_("memo"), max_length=MEMO_MAX_LENGTH, blank=True)
    codes = models.ManyToManyField(Code, through="AnnotationCode", related_name="annotations")

    class Meta:
        ordering = ["message", "start", "end", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(start__gte=0) & Q(end__gt=F("start")), name="annotation_span_ordered"),
            models.CheckConstraint(condition=~Q(excerpt=""), name="annotation_excerpt_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("memo"), MEMO_MAX_LENGTH), name="annotation_memo_length"
            ),
            # The same span selected again gets more codes, not a second annotation.
            models.UniqueConstraint(fields=["membership", "message", "start", "end"], name="annotation_span_unique"),
        ]
        indexes = [models.Index(fields=["membership", "message"])]


class AnnotationCode(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE)
    code = models.ForeignKey(Code, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["annotation", "code"], name="annotation_code_unique")]


class Attribute(Timestamped):
    """Focused coding: a participant's named group of their codes, with a definition."""

    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE, related_name="attributes")
    membership = models.ForeignKey("workshops.Membership", on_delete=models.CASCADE, related_name="attributes")
    name = models.CharField(_("name"), max_length=CODE_MAX_LENGTH)
    definition = models.TextField(_("definition"), max_length=MEMO_MAX_LENGTH, blank=True)
    codes = models.ManyToManyField(Code, related_name="attributes", blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="attribute_name_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("definition"), MEMO_MAX_LENGTH), name="attribute_definition_length"
            ),
        ]

    def __str__(self) -> str:
        return self.name
