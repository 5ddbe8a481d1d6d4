from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workshops.models import Invite, Role, Stage, Workshop


class LoginForm(AuthenticationForm):
    pass


class WorkshopForm(forms.ModelForm):
    class Meta:
        model = Workshop
        fields = [
            "title", "slug", "deployment_context", "audience", "language", "system_prompt",
            "show_model_names", "share_code_suggestions",
        ]
        widgets = {
            "deployment_context": forms.Textarea(attrs={"rows": 4}),
            "system_prompt": forms.Textarea(attrs={"rows": 4}),
        }


class WorkshopCreateForm(WorkshopForm):
    class Meta(WorkshopForm.Meta):
        fields = ["title", "slug", "deployment_context", "audience", "language", "system_prompt"]


class FamiliarizeForm(forms.ModelForm):
    class Meta:
        model = Workshop
        fields = ["consent_text", "orientation_md", "practice_text", "practice_example_codes", "readiness_pass_mark"]
        widgets = {
            "consent_text": forms.Textarea(attrs={"rows": 8}),
            "orientation_md": forms.Textarea(attrs={"rows": 18}),
            "practice_text": forms.Textarea(attrs={"rows": 6}),
            "practice_example_codes": forms.Textarea(attrs={"rows": 5}),
        }

    def clean_readiness_pass_mark(self):
        value = self.cleaned_data["readiness_pass_mark"]
        if value > 100:
            raise forms.ValidationError(_("A pass mark is a percentage from 0 to 100."))
        return value


class ReadinessQuestionForm(forms.Form):
    prompt = forms.CharField(label=_("Question"), max_length=500)
    choices = forms.CharField(
        label=_("Choices, one per line"), widget=forms.Textarea(attrs={"rows": 4}), max_length=3000
    )
    correct_choice = forms.IntegerField(label=_("Number of the correct choice (1 = first)"), min_value=1, max_value=20)
    explanation = forms.CharField(label=_("Explanation"), max_length=1000, required=False)

    def clean(self):
        data = super().clean()
        choices = [c.strip() for c in data.get("choices", "").splitlines() if c.strip()]
        if len(choices) < 2:
            self.add_error("choices", _("Give at least two choices, one per line."))
        elif data.get("correct_choice") and data["correct_choice"] > len(choices):
            self.add_error("correct_choice", _("There are only %(n)d choices.") % {"n": len(choices)})
        data["choice_list"] = choices
        return data


ReadinessFormSet = forms.formset_factory(ReadinessQuestionForm, extra=1, can_delete=True, max_num=20)


class InviteForm(forms.ModelForm):
    expires_at = forms.DateTimeField(
        label=_("Expires (optional)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = Invite
        fields = ["role", "label", "max_uses", "expires_at"]

    def clean_max_uses(self):
        value = self.cleaned_data["max_uses"]
        if value < 1 or value > 1000:
            raise forms.ValidationError(_("Choose between 1 and 1000 uses."))
        return value

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value and value <= timezone.now():
            raise forms.ValidationError(_("The expiry must be in the future."))
        return value


class StageForm(forms.Form):
    stage = forms.ChoiceField(choices=Stage.choices)
    # Sent by the confirmation page: the stage the facilitator saw when confirming (if another
    # facilitator moved it meanwhile, the page is shown again instead of moving).
    from_stage = forms.ChoiceField(choices=Stage.choices, required=False)
    confirm = forms.BooleanField(required=False)


class JoinSignupForm(UserCreationForm):
    display_name = forms.CharField(
        label=_("Display name"), max_length=80,
        help_text=_("How the facilitator will know you. Other participants see a pseudonym (P01, P02 ...)."),
    )
    email = forms.EmailField(label=_("Email (optional)"), required=False)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("display_name", "username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.pop("autofocus", None)
        self.fields["display_name"].widget.attrs["autofocus"] = True

    def clean_display_name(self):
        name = " ".join(self.cleaned_data["display_name"].split())
        if not name:
            raise forms.ValidationError(_("Please give a display name."))
        return name


class JoinExistingForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=80)

    def clean_display_name(self):
        name = " ".join(self.cleaned_data["display_name"].split())
        if not name:
            raise forms.ValidationError(_("Please give a display name."))
        return name


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        label=_("I have read the above and agree to take part."), required=True,
        error_messages={"required": _("Tick the box to agree, or leave the page if you do not want to take part.")},
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(
        label=_("I understand: my data will be left out of every view and export."), required=True
    )


class PracticeCodeForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=200)
    excerpt = forms.CharField(
        label=_("Excerpt (optional): the words you are coding"), max_length=2000, required=False
    )
    start = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)
    end = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)


ROLE_LABELS = dict(Role.choices)
