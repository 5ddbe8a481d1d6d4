from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from evaluation.models import POINT_MAX, SCALE, STATEMENT_MAX, STATEMENTS_MAX, EvaluationSettings

NOT_APPLICABLE = "na"


class SettingsForm(forms.ModelForm):
    class Meta:
        model = EvaluationSettings
        fields = ["answers_per_person", "raters_per_answer", "pairs_per_person", "include_participant_conversations"]
        widgets = {
            "answers_per_person": forms.NumberInput(attrs={"min": 1, "max": 100}),
            "raters_per_answer": forms.NumberInput(attrs={"min": 1, "max": 50}),
            "pairs_per_person": forms.NumberInput(attrs={"min": 0, "max": 100}),
        }


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class RubricForm(forms.Form):
    """Scale descriptions 1–5, should / should-not statements (one per line), and which of the
    axis' excerpts illustrate a high or a low score."""

    should = forms.CharField(label=_("The answer should … (one statement per line)"), required=False,
                             widget=forms.Textarea(attrs={"rows": 3}), max_length=STATEMENT_MAX * STATEMENTS_MAX)
    should_not = forms.CharField(label=_("The answer should not … (one statement per line)"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 3}), max_length=STATEMENT_MAX * STATEMENTS_MAX)

    def __init__(self, *args, examples=(), version=None, **kwargs):
        super().__init__(*args, **kwargs)
        scale = version.scale if version else {}
        chosen = {e["example_id"]: e["polarity"] for e in (version.examples if version else [])}
        for point in SCALE:
            self.fields[f"point_{point}"] = forms.CharField(
                label=_("What a %(p)d looks like") % {"p": point}, required=False, max_length=POINT_MAX,
                initial=scale.get(str(point), ""), widget=forms.Textarea(attrs={"rows": 2}),
            )
            if version and f"scale.{point}" in version.drafted:
                field = self.fields[f"point_{point}"]
                field.help_text = _("Drafted by a model: edit it, or approve the draft below.")
                field.widget.attrs.update({"class": "drafted", "data-drafted": "1"})
        # Declared fields first in the page: the scale, then the statements.
        self.order_fields([f"point_{p}" for p in SCALE] + ["should", "should_not"])
        if version:
            self.fields["should"].initial = "\n".join(version.should)
            self.fields["should_not"].initial = "\n".join(version.should_not)
        self.examples = list(examples)
        for example in self.examples:
            self.fields[f"example_{example.id}"] = forms.ChoiceField(
                label=example.excerpt[:300], required=False, initial=chosen.get(example.id, ""),
                choices=[("", _("not used")), ("high", _("illustrates a high score")),
                         ("low", _("illustrates a low score"))],
            )

    def clean(self):
        data = super().clean()
        for key in ("should", "should_not"):
            lines = _lines(data.get(key, ""))
            if len(lines) > STATEMENTS_MAX:
                self.add_error(key, _("At most %(n)d statements.") % {"n": STATEMENTS_MAX})
            if any(len(line) > STATEMENT_MAX for line in lines):
                self.add_error(key, _("Each statement is at most %(n)d characters.") % {"n": STATEMENT_MAX})
            data[key] = lines
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "scale": {str(p): data.get(f"point_{p}", "") for p in SCALE},
            "should": data["should"], "should_not": data["should_not"],
            "examples": [(e.id, data[f"example_{e.id}"]) for e in self.examples if data.get(f"example_{e.id}")],
        }


class RatingsForm(forms.Form):
    """One answer rated on every ratable axis: 1–5 or 'does not apply'."""

    def __init__(self, *args, axes=(), mine=None, **kwargs):
        super().__init__(*args, **kwargs)
        initial_scores = mine or {}  # the person's earlier scores by axis id
        self.axes = list(axes)
        choices = [(str(p), str(p)) for p in SCALE] + [(NOT_APPLICABLE, _("does not apply"))]
        for row in self.axes:
            axis = row["axis"]
            initial = None
            if axis.id in initial_scores:
                score = initial_scores[axis.id]
                initial = NOT_APPLICABLE if score is None else str(score)
            self.fields[f"axis_{axis.id}"] = forms.ChoiceField(
                label=row["version"].name, choices=choices, widget=forms.RadioSelect, initial=initial,
                error_messages={"required": _("Choose 1–5 or 'does not apply' for this axis."),
                                "invalid_choice": _("A rating is 1–5 or 'does not apply'.")},
            )

    def scores(self) -> dict[int, int | None]:
        out = {}
        for row in self.axes:
            value = self.cleaned_data[f"axis_{row['axis'].id}"]
            out[row["axis"].id] = None if value == NOT_APPLICABLE else int(value)
        return out


class JudgeForm(forms.Form):
    endpoints = forms.MultipleChoiceField(label=_("Judge models"), widget=forms.CheckboxSelectMultiple,
                                          error_messages={"required": _("Choose at least one judge model.")})
    concurrency = forms.IntegerField(label=_("Calls in flight per judge"), min_value=1, max_value=32, initial=4)

    def __init__(self, *args, **kwargs):
        from llm_gateway import registry

        super().__init__(*args, **kwargs)
        self.fields["endpoints"].choices = [(e.key, f"{e.name} ({e.model})") for e in registry.endpoints()]


class PairForm(forms.Form):
    """One pair of answers compared on every ratable axis (required) and overall (optional): the
    left answer, the right one, equally good, or does not apply."""

    def __init__(self, *args, axes=(), mine=None, **kwargs):
        super().__init__(*args, **kwargs)
        initial_choices = mine or {}  # the person's earlier choices by axis id (None: overall)
        self.axes = list(axes)
        choices = [("left", _("Left answer")), ("right", _("Right answer")), ("tie", _("Equally good")),
                   ("not_applicable", _("does not apply"))]
        for row in self.axes:
            axis = row["axis"]
            self.fields[f"axis_{axis.id}"] = forms.ChoiceField(
                label=row["version"].name, choices=choices, widget=forms.RadioSelect,
                initial=initial_choices.get(axis.id),
                error_messages={"required": _("Choose an answer, 'equally good' or 'does not apply' for this axis."),
                                "invalid_choice": _("Choose the left answer, the right one, 'equally good' or "
                                                    "'does not apply'.")},
            )
        self.fields["overall"] = forms.ChoiceField(
            label=_("Overall, which answer is better?"), choices=choices[:3], widget=forms.RadioSelect,
            required=False, initial=initial_choices.get(None))

    def choices(self) -> dict:
        out = {row["axis"].id: self.cleaned_data[f"axis_{row['axis'].id}"] for row in self.axes}
        if self.cleaned_data.get("overall"):
            out[None] = self.cleaned_data["overall"]
        return out


class DraftForm(forms.Form):
    """'Draft with a model': which model proposes the empty scale descriptions."""

    endpoint = forms.ChoiceField(label=_("Model"))

    def __init__(self, *args, **kwargs):
        from llm_gateway import registry

        super().__init__(*args, **kwargs)
        self.fields["endpoint"].choices = [(e.key, f"{e.name} ({e.model})") for e in registry.endpoints()]
