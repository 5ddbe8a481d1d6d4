from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from studies.models import MatchStatus


class StudyForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    slug = forms.SlugField(label=_("Short name (used in links)"), max_length=60)
    deployment_context = forms.CharField(label=_("Deployment context"), max_length=5000, required=False,
                                         widget=forms.Textarea(attrs={"rows": 3}))


class TemplateForm(forms.Form):
    title = forms.CharField(label=_("Title of the new workshop"), max_length=200)
    slug = forms.SlugField(label=_("Short name (used in links)"), max_length=60)


class AddWorkshopForm(forms.Form):
    workshop = forms.SlugField(label=_("Workshop (short name)"), max_length=60)


class GrantForm(forms.Form):
    username = forms.CharField(label=_("Researcher's username"), max_length=150)


class DecideForm(forms.Form):
    status = forms.ChoiceField(choices=[(MatchStatus.CONFIRMED, _("Confirm")), (MatchStatus.REJECTED, _("Reject")),
                                        (MatchStatus.SUGGESTED, _("Undecide"))])
    note = forms.CharField(required=False, max_length=1000)
    axis_b = forms.IntegerField(required=False, min_value=1)
