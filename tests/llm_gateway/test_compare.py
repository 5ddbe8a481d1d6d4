"""Compare mode: several candidate answers per message (two models blinded, or one model asked
for deliberately different answers), generated side by side against the fault upstream, and
the participant's stored preference."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError

from llm_gateway import services
from llm_gateway.models import Message, MessageStatus, Preference, WorkshopModel
from tests.factories import facilitator_of, make_member

pytestmark = pytest.mark.django_db(transaction=True)

VARIANTS = "Be brief.\nBe cautious.\nTake a side.\nNever used."


def _diverse(chat_setup, count=3, model="fault:echo"):
    workshop, participant, _plain = chat_setup(model)
    services.compare_settings_update(workshop=workshop, mode="diverse", count=count, variants=VARIANTS)
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.get(
        workshop=workshop), compare=True)
    return workshop, participant, conversation


def _candidates(question):
    return list(Message.objects.filter(reply_to=question).exclude(status=MessageStatus.SUPERSEDED).order_by("slot"))


def _system(request) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "system")


def test_diverse_answers_each_get_their_own_instruction(chat_setup, fault_upstream):
    workshop, participant, conversation = _diverse(chat_setup)
    assert conversation.compare_mode == "diverse"
    question, _first = services.message_send(conversation=conversation, membership=participant, text="Was Akbar tolerant?")
    candidates = _candidates(question)
    assert [c.slot for c in candidates] == [0, 1, 2]
    assert all(c.is_candidate and c.status == MessageStatus.COMPLETE for c in candidates)
    assert sorted(c.variant for c in candidates) == ["Be brief.", "Be cautious.", "Take a side."]
    # Each call carried the workshop's system prompt plus its own instruction, and the same question.
    calls = fault_upstream.requests[-3:]
    assert sorted(_system(r).rsplit("\n\n", 1)[1] for r in calls) == ["Be brief.", "Be cautious.", "Take a side."]
    assert all(_system(r).startswith(workshop.system_prompt) for r in calls)
    assert all(r["messages"][-1] == {"role": "user", "content": "Was Akbar tolerant?"} for r in calls)
    preference = Preference.objects.get(question=question)
    assert preference.candidates == [c.id for c in candidates] and preference.decided_at is None
    assert preference.membership_id == participant.id and preference.mode == "diverse"


def test_choice_is_required_then_closes_and_the_chosen_answer_continues(chat_setup, fault_upstream):
    _workshop, participant, conversation = _diverse(chat_setup, count=2)
    question, _first = services.message_send(conversation=conversation, membership=participant, text="First question")
    a, b = _candidates(question)
    Message.objects.filter(pk=a.pk).update(content="ANSWER ONE")
    Message.objects.filter(pk=b.pk).update(content="ANSWER TWO")
    with pytest.raises(ValidationError, match="Choose the answer you prefer"):
        services.message_send(conversation=conversation, membership=participant, text="Next")
    with pytest.raises(ValidationError, match="Choose one of the answers shown"):
        services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                                   choice=str(question.id))
    with pytest.raises(ValidationError, match="Choose one of the answers shown"):
        services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                                   choice="'; DROP TABLE x;--")
    services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                               choice=str(b.id), note="  It names its sources.  ")
    preference = Preference.objects.get(question=question)
    assert preference.chosen_id == b.id and preference.note == "It names its sources." and preference.decided_at
    # Changing one's mind is allowed until the next message.
    services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                               choice=str(a.id))
    services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                               choice=str(b.id))
    services.message_send(conversation=conversation, membership=participant, text="Second question")
    history = [m for m in fault_upstream.requests[-1]["messages"] if m["role"] != "system"]
    assert history == [{"role": "user", "content": "First question"}, {"role": "assistant", "content": "ANSWER TWO"},
                       {"role": "user", "content": "Second question"}]
    with pytest.raises(ValidationError, match="the conversation has moved on"):
        services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                                   choice=str(a.id))


def test_none_of_these_keeps_roles_alternating(chat_setup, fault_upstream):
    _workshop, participant, conversation = _diverse(chat_setup, count=2)
    question, _first = services.message_send(conversation=conversation, membership=participant, text="Q1")
    first_shown = _candidates(question)[0]
    services.preference_choose(conversation=conversation, membership=participant, question_id=question.id, choice="none")
    preference = Preference.objects.get(question=question)
    assert preference.none_chosen and preference.chosen_id is None
    services.message_send(conversation=conversation, membership=participant, text="Q2")
    roles = [m["role"] for m in fault_upstream.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert fault_upstream.requests[-1]["messages"][2]["content"] == first_shown.content


def test_two_models_side_by_side(chat_setup, fault_upstream):
    endpoints = [{"key": "left", "base_url": fault_upstream.base_url, "model": "fault:ok:5"},
                 {"key": "right", "base_url": fault_upstream.base_url, "model": "fault:echo"}]
    workshop, participant, _plain = chat_setup(endpoints=endpoints)
    with pytest.raises(ValidationError, match="at least two models"):
        services.compare_settings_update(workshop=workshop, mode="models", count=2, variants="")
    services.workshop_models_set(workshop=workshop, endpoint_keys=["left", "right"])
    services.compare_settings_update(workshop=workshop, mode="models", count=2, variants="")
    conversation = services.conversation_create(membership=participant, workshop_model=None, compare=True)
    question, _first = services.message_send(conversation=conversation, membership=participant, text="Hello")
    candidates = _candidates(question)
    assert sorted(c.endpoint_key for c in candidates) == ["left", "right"]
    assert all(c.status == MessageStatus.COMPLETE and c.content and not c.variant for c in candidates)
    from llm_gateway import selectors

    assert "compared" in selectors.label_for(workshop, conversation)


def test_only_a_failed_candidate_can_be_tried_again(chat_setup, fault_upstream):
    endpoints = [{"key": "good", "base_url": fault_upstream.base_url, "model": "fault:ok:4"},
                 {"key": "bad", "base_url": fault_upstream.base_url, "model": "fault:status:400"}]
    workshop, participant, _plain = chat_setup(endpoints=endpoints)
    services.workshop_models_set(workshop=workshop, endpoint_keys=["good", "bad"])
    services.compare_settings_update(workshop=workshop, mode="models", count=2, variants="")
    conversation = services.conversation_create(membership=participant, workshop_model=None, compare=True)
    question, _first = services.message_send(conversation=conversation, membership=participant, text="Hello")
    by_key = {c.endpoint_key: c for c in _candidates(question)}
    assert by_key["good"].status == MessageStatus.COMPLETE and by_key["bad"].status == MessageStatus.FAILED
    with pytest.raises(ValidationError, match="cannot be asked again"):
        services.answer_regenerate(message=by_key["good"], membership=participant)
    with pytest.raises(ValidationError, match="Choose one of the answers shown"):  # a failed answer cannot be chosen
        services.preference_choose(conversation=conversation, membership=participant, question_id=question.id,
                                   choice=str(by_key["bad"].id))
    again = services.answer_regenerate(message=by_key["bad"], membership=participant)
    again.refresh_from_db()
    assert again.is_candidate and again.slot == by_key["bad"].slot and again.endpoint_key == "bad"
    assert Message.objects.get(pk=by_key["bad"].pk).status == MessageStatus.SUPERSEDED
    order = Preference.objects.get(question=question).candidates
    assert again.id in order and by_key["bad"].id not in order and by_key["good"].id in order


def test_pages_choice_and_export(chat_setup, fault_upstream, client_for):
    workshop, participant, conversation = _diverse(chat_setup, count=2)
    question, _first = services.message_send(conversation=conversation, membership=participant,
                                             text="=HYPERLINK(\"http://evil\")")
    a, b = _candidates(question)
    c = client_for(participant)
    page = c.get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert 'class="compare-grid cols-2"' in page and "Which answer do you prefer?" in page
    assert "Answer 1" in page and "Answer 2" in page
    assert "Be brief." not in page  # participants do not see the instructions
    url = f"/w/{workshop.slug}/interact/c/{conversation.id}/choose/{question.id}/"
    html = c.post(url, {"choice": str(a.id), "note": "<script>alert(1)</script>"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Change my choice" in html and "<script>alert(1)</script>" not in html
    assert Preference.objects.get(question=question).chosen_id == a.id
    # Someone else cannot choose for the owner.
    other = make_member(workshop, role="participant")
    assert client_for(other).post(url, {"choice": str(b.id)}).status_code == 404
    # Staff see which instruction shaped each answer, and the export.
    staff = client_for(facilitator_of(workshop))
    staff_page = staff.get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert a.variant in staff_page and b.variant in staff_page
    response = staff.get(f"/w/{workshop.slug}/interact/export/preferences.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["participant"] == participant.pseudonym and row["question"].startswith("'=HYPERLINK")
    assert row["candidate_ids_in_order_shown"] == f"{a.id} {b.id}" and row["chosen_message_id"] == str(a.id)
    assert row["chosen_column"] == "1" and row["none_of_these"] == "0" and row["chosen_variant"] == a.variant
    streamed = staff.get(f"/w/{workshop.slug}/interact/export/messages.csv")
    # Streamed page by page (workshops.exports.stream_download: in batches under ASGI).
    messages_csv = b"".join(streamed.streaming_content).decode()
    exported = {r["message_id"]: r for r in csv.DictReader(io.StringIO(messages_csv))}
    assert exported[str(b.id)]["is_candidate"] == "1" and exported[str(b.id)]["candidate_column"] == "2"


def test_facilitator_turns_compare_mode_on_with_validation(chat_setup, client_for):
    workshop, participant, _plain = chat_setup("fault:ok")
    c = client_for(facilitator_of(workshop))
    url = f"/w/{workshop.slug}/interact/models/"
    form = {"endpoints": ["fault"], "compare_mode": "diverse", "compare_count": "3", "compare_variants": "Only one line"}
    page = c.post(url, form).content.decode()
    assert "Write at least 3 instructions" in page
    form["compare_variants"] = "Short.\nLong.\nSkeptical."
    assert c.post(url, form).status_code == 302
    index = client_for(participant).get(f"/w/{workshop.slug}/interact/").content.decode()
    assert "New comparison: 3 different answers from" in index
    c = client_for(facilitator_of(workshop))  # one test client: log the facilitator back in
    form["compare_mode"] = "models"
    assert "at least two models" in c.post(url, form).content.decode()
