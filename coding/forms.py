from django import forms
from django.utils.translation import gettext_lazy as _

from coding.models import CODE_MAX_LENGTH, MEMO_MAX_LENGTH


class AnnotationCreateForm(forms.Form):
    message = forms.IntegerField(min_value=1)
    start = forms.IntegerField(min_value=0, error_messages={"min_value": _("The selection is not valid: select the text again.")})
    end = forms.IntegerField(min_value=1, error_messages={"min_value": _("The selection is not valid: select the text again.")})
    memo = forms.CharField(required=False, max_length=MEMO_MAX_LENGTH, strip=True)


class CodeTextForm(forms.Form):
    # Length and emptiness are checked by the service (with a clearer message); the bound here
    # only stops absurd payloads.
    code = forms.CharField(label=_("Code"), required=False, max_length=4 * CODE_MAX_LENGTH, strip=True)


class MemoForm(forms.Form):
    memo = forms.CharField(label=_("Memo"), required=False, max_length=MEMO_MAX_LENGTH)


class AttributeForm(forms.Form):
    name = forms.CharField(label=_("Name"), required=False, max_length=4 * CODE_MAX_LENGTH)
    definition = forms.CharField(label=_("Definition"), required=False, max_length=MEMO_MAX_LENGTH,
                                 widget=forms.Textarea(attrs={"rows": 3}))


class CodeEditForm(forms.Form):
    text = forms.CharField(label=_("Code"), required=False, max_length=4 * CODE_MAX_LENGTH)
    memo = forms.CharField(label=_("Definition or memo"), required=False, max_length=MEMO_MAX_LENGTH)


class CodeChoiceForm(forms.Form):
    code = forms.IntegerField(min_value=1, error_messages={"required": _("Choose a code.")})
