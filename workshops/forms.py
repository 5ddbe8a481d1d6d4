from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workshops.models import Invite, Role, Stage, Workshop


def add_errors(form, error: ValidationError) -> None:
    """A service's refusal shown on the form: under its field where it names one of the form's
    fields, else above the form."""
    if hasattr(error, "error_dict"):
        for field, errs in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, error.messages)


class LoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # AuthenticationForm sets max_length after the field is built, so no validator checks
        # it: an over-long username reached authenticate() and the throttle's database row.
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))
        self.fields["password"].max_length = 4096
        self.fields["password"].validators.append(MaxLengthValidator(4096))


class WorkshopForm(forms.ModelForm):
    class Meta:
        model = Workshop
        fields = [
            "title", "slug", "deployment_context", "audience", "language", "system_prompt",
            "show_model_names", "share_code_suggestions", "tell_model_language",
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


def _clean_display_name(value: str) -> str:
    return " ".join(value.split())


class JoinForm(forms.Form):
    """Joining by link: an optional display name and consent; no username, no password."""

    display_name = forms.CharField(
        label=_("Your name (optional)"), max_length=80, required=False,
        help_text=_("Only you and the facilitators see it. Everyone else sees a pseudonym (P01, P02 ...)."),
    )
    language = forms.ChoiceField(label=_("Your language"), required=False, choices=(),
                                 help_text=_("The pages you see will be in this language. You can change it at any time."))
    agree = forms.BooleanField(
        label=_("I have read the above and agree to take part."), required=True,
        error_messages={"required": _("Tick the box to agree, or leave the page if you do not want to take part.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from workshops.i18n import native_languages

        self.fields["language"].choices = native_languages()

    def clean_display_name(self):
        return _clean_display_name(self.cleaned_data["display_name"])


class ReturnCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Your return code"), max_length=40,
        widget=forms.TextInput(attrs={
            "autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
            "placeholder": "ABCD-EFGH-JKLM",
        }),
    )


class AccountLoginForm(forms.Form):
    """Optional: a username and password for people who want to log in that way too."""

    username = forms.CharField(
        label=_("Username"), max_length=150, required=False,
        help_text=_("Optional. Leave empty to keep the one shown above."),
    )
    password1 = forms.CharField(label=_("New password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), max_length=128)
    password2 = forms.CharField(label=_("New password again"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), max_length=128)

    current_password = forms.CharField(
        label=_("Your current password"), max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    field_order = ["current_password", "username", "password1", "password2"]

    def __init__(self, *args, user, request=None, **kwargs):
        self.user = user
        self.request = request
        super().__init__(*args, **kwargs)
        if not user.has_usable_password():
            del self.fields["current_password"]  # joined by link: nothing to confirm yet

    def clean_current_password(self):
        from django.contrib.auth import authenticate

        value = self.cleaned_data["current_password"]
        # Through authenticate(), so wrong guesses are throttled like any login.
        if authenticate(self.request, username=self.user.get_username(), password=value) != self.user:
            raise forms.ValidationError(_("That is not your current password."))
        return value

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        if name:
            get_user_model().username_validator(name)
        return name

    def clean(self):
        from django.contrib.auth import password_validation

        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            try:
                password_validation.validate_password(p1, self.user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


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


class WorkshopTextsForm(forms.Form):
    """The workshop's content in one other language (blank fields: participants see the original)."""

    deployment_context = forms.CharField(label=_("Deployment context"), max_length=5000, required=False,
                                         widget=forms.Textarea(attrs={"rows": 3}))
    consent_text = forms.CharField(label=_("Consent text"), max_length=20000, required=False,
                                   widget=forms.Textarea(attrs={"rows": 6}))
    orientation_md = forms.CharField(label=_("Orientation (Markdown)"), max_length=50000, required=False,
                                     widget=forms.Textarea(attrs={"rows": 10}))
    practice_text = forms.CharField(label=_("Practice sample text"), max_length=10000, required=False,
                                    widget=forms.Textarea(attrs={"rows": 4}))
    system_prompt = forms.CharField(label=_("System prompt"), max_length=8000, required=False,
                                    widget=forms.Textarea(attrs={"rows": 4}))
