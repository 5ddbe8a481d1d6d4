"""Forms of the Discuss stage (validation only; the services hold the rules)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from discussion.models import DEFINITION_MAX, NAME_MAX
from discussion.selectors import own_attributes, picks_of

LIKERT = [(1, _("1 · Strongly disagree")), (2, _("2 · Disagree")), (3, _("3 · Neither")),
          (4, _("4 · Agree")), (5, _("5 · Strongly agree"))]


class ControlForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in
                                        ("segment", "open", "close", "reveal", "hide", "spotlight", "timer", "map")])
    value = forms.CharField(required=False, max_length=20)

    def command(self) -> tuple[str, dict]:
        """The form's button as a command of discussion.commands.FACILITATOR (name, data)."""
        action = self.cleaned_data["action"]
        value = self.cleaned_data.get("value") or ""
        return {
            "segment": ("segment", {"segment": value}),
            "open": ("open", {"open": True}),
            "close": ("open", {"open": False}),
            "reveal": ("reveal", {"revealed": True}),
            "hide": ("reveal", {"revealed": False}),
            "spotlight": ("spotlight", {"participant": value or None}),
            "timer": ("timer", {"minutes": value or 0}),
            "map": ("map.refresh", {"full": value == "full"}),
        }[action]


class ExcerptSearchForm(forms.Form):
    """The excerpt picker's query string."""

    q = forms.CharField(required=False, max_length=200)
    conversation = forms.IntegerField(required=False, min_value=1)
    message = forms.IntegerField(required=False, min_value=1)
    partial = forms.ChoiceField(required=False, choices=[("", ""), ("results", "results")])


class PicksForm(forms.Form):
    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        attributes = list(own_attributes(membership))
        choices = [("", _("— write a new one —"))] + [(str(a.pk), a.name) for a in attributes]
        existing = {p.position: p for p in picks_of(membership)}
        for i in (1, 2, 3):
            pick = existing.get(i)
            self.fields[f"attribute_{i}"] = forms.ChoiceField(
                label=_("From my attributes"), choices=choices, required=False,
                initial=str(pick.attribute_id) if pick and pick.attribute_id else "")
            self.fields[f"name_{i}"] = forms.CharField(
                label=_("Name"), max_length=NAME_MAX, required=False, initial=pick.name if pick else "")
            self.fields[f"definition_{i}"] = forms.CharField(
                label=_("Definition in your words"), max_length=DEFINITION_MAX, required=False,
                widget=forms.Textarea(attrs={"rows": 2}), initial=pick.definition if pick else "")
        self.attribute_definitions = {str(a.pk): a.definition for a in attributes}

    def rows(self):
        return [(i, self[f"attribute_{i}"], self[f"name_{i}"], self[f"definition_{i}"]) for i in (1, 2, 3)]

    def picks(self) -> list[dict]:
        return [{"attribute_id": self.cleaned_data[f"attribute_{i}"] or None,
                 "name": self.cleaned_data[f"name_{i}"], "definition": self.cleaned_data[f"definition_{i}"]}
                for i in (1, 2, 3)]


class RatingsForm(forms.Form):
    """Segment 5: a Likert rating and a rank for every final axis."""

    def __init__(self, *args, axes, state=None, **kwargs):
        super().__init__(*args, **kwargs)
        state = state or {"ratings": {}, "ranks": {}}
        self.axes = axes
        n = len(axes)
        for axis in axes:
            self.fields[f"likert_{axis.pk}"] = forms.TypedChoiceField(
                label=axis.name, choices=LIKERT, coerce=int, widget=forms.RadioSelect,
                initial=state["ratings"].get(axis.pk))
            self.fields[f"rank_{axis.pk}"] = forms.TypedChoiceField(
                label=_("Your rank for “%(name)s”") % {"name": axis.name},
                choices=[("", "—")] + [(i, str(i)) for i in range(1, n + 1)], coerce=int, empty_value=None,
                required=True, initial=state["ranks"].get(axis.pk))

    def clean(self):
        data = super().clean()
        ranks = [data.get(f"rank_{a.pk}") for a in self.axes]
        if None not in ranks and len(set(ranks)) != len(ranks):
            raise forms.ValidationError(_("Give each axis a different rank."))
        return data

    def rows(self):
        return [(axis, self[f"likert_{axis.pk}"], self[f"rank_{axis.pk}"]) for axis in self.axes]

    def ratings(self) -> dict[int, int]:
        return {a.pk: self.cleaned_data[f"likert_{a.pk}"] for a in self.axes}

    def ordered_ids(self) -> list[int]:
        return [a.pk for a in sorted(self.axes, key=lambda a: self.cleaned_data[f"rank_{a.pk}"])]
