from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from llm_gateway import registry
from llm_gateway.models import CompareMode


class MessageForm(forms.Form):
    text = forms.CharField(
        label=_("Your message"),
        widget=forms.Textarea(attrs={"rows": 3, "dir": "auto", "autocomplete": "off"}),
        strip=True,
        error_messages={"required": _("Write a message first.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = settings.CHAT_MESSAGE_MAX_CHARS
        self.fields["text"].widget.attrs["maxlength"] = limit
        self.fields["text"].help_text = _("Up to %(n)s characters. Enter sends; Shift+Enter starts a new line.") % {"n": limit}


class ModelsForm(forms.Form):
    endpoints = forms.MultipleChoiceField(
        label=_("Models offered in this workshop"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("Participants choose one of these for each conversation. They see 'Model A', 'Model B' … "
                    "unless the workshop settings show model names."),
    )
    token_budget = forms.IntegerField(
        label=_("Token budget for the whole workshop"), required=False, min_value=1,
        help_text=_("Prompt plus answer tokens across everyone. Empty: no limit."),
    )
    max_answer_tokens = forms.IntegerField(
        label=_("Longest answer (tokens)"), required=False, min_value=16, max_value=32000,
        help_text=_("Empty: the endpoint's default."),
    )

    compare_mode = forms.ChoiceField(
        label=_("Compare mode"), choices=CompareMode.choices, widget=forms.RadioSelect, required=False,
        help_text=_("When on, participants can start comparison conversations: each message gets several answers "
                    "side by side, labelled Answer 1, Answer 2 … in a random order, and they choose the one they "
                    "prefer (or none). Ordinary conversations stay available."),
    )
    compare_count = forms.IntegerField(
        label=_("Answers per message (different answers)"), min_value=2, max_value=4, initial=2, required=False,
        help_text=_("With several different answers from one model: how many (2 to 4). Comparing models always shows two."),
    )
    compare_variants = forms.CharField(
        label=_("Instructions for the different answers"), required=False,
        widget=forms.Textarea(attrs={"rows": 5, "dir": "auto"}),
        help_text=_("One per line. Each answer gets one of them added to the workshop's system prompt; write them to "
                    "pull the answers apart (tone, perspective, caution, stance), as negatively-correlated sampling does."),
    )

    def clean_compare_mode(self):
        return self.cleaned_data.get("compare_mode") or CompareMode.OFF

    def clean_compare_count(self):
        return self.cleaned_data.get("compare_count") or 2

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoints"].choices = [(e.key, f"{e.name} ({e.key})") for e in registry.endpoints()]
