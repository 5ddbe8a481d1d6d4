import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from coding import selectors, services
from coding.models import Annotation, AnnotationCode, Attribute, Code
from coding.services import NotEditable
from tests.coding.conftest import MIXED
from tests.factories import make_conversation, make_workshop, make_participant
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


def span_of(text, needle):
    start = text.index(needle)
    return start, start + len(needle)


@pytest.mark.parametrize("needle", ["भारत का इतिहास", "中国历史", "التاريخ مهم", "🎉", "👩🏽‍🏫", "American holiday"])
def test_span_in_code_points_matches_excerpt_in_any_script(reflect, needle):
    start, end = span_of(MIXED, needle)
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=start, end=end,
                                   codes=["culturally specific"])
    a.refresh_from_db()
    assert a.excerpt == needle == reflect.own_answer.content[a.start:a.end]


def test_excerpt_is_recomputed_server_side(reflect):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=6,
                                   codes=["greeting"])
    assert a.excerpt == MIXED[0:6]


@pytest.mark.parametrize("start,end", [(-1, 3), (5, 5), (6, 2), (0, len(MIXED) + 1), ("x", 3)])
def test_spans_outside_the_message_are_refused(reflect, start, end):
    with pytest.raises(ValidationError):
        services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=start, end=end,
                                   codes=["x"])
    assert not Annotation.objects.exists()


def test_database_refuses_unordered_span(reflect):
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(membership=reflect.p1, message=reflect.own_answer, start=5, end=5, excerpt="x")


@pytest.mark.parametrize("code", ["", "   ", "x" * 121])
def test_empty_and_overlong_codes_are_refused(reflect, code):
    with pytest.raises(ValidationError):
        services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                   codes=[code])
    assert not Code.objects.exists()


def test_database_refuses_empty_code(reflect):
    with pytest.raises(IntegrityError), transaction.atomic():
        Code.objects.create(workshop=reflect.workshop, membership=reflect.p1, text="", normalized="")


def test_multiple_codes_on_one_span_and_same_span_again_adds_codes(reflect):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=6,
                                   codes=["warm", "Polite "])
    again = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=6,
                                       codes=["polite", "Hindi first"])
    assert again.id == a.id
    assert sorted(a.codes.values_list("text", flat=True)) == ["Hindi first", "Polite", "warm"]
    # Codes are rows per member: "polite" and "Polite " are the same code.
    assert Code.objects.filter(membership=reflect.p1).count() == 3


def test_overlapping_spans_are_separate_annotations(reflect):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=20,
                                   codes=["a"])
    b = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=10, end=30,
                                   codes=["b"])
    turn = selectors.render_turn(reflect.own_answer, reflect.p1)
    assert {x.id for x in turn.annotations} == {a.id, b.id}
    assert f'data-ann="{a.id} {b.id}"' in turn.html  # the overlap is marked with both


def test_codes_are_per_participant(reflect):
    services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["factual"])
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["Factual"])
    assert Code.objects.filter(normalized="factual").count() == 2


def test_only_codable_messages_of_own_or_baseline(reflect):
    with pytest.raises(NotEditable):
        services.annotation_create(membership=reflect.p1, message_id=reflect.other_answer.id, start=0, end=5,
                                   codes=["x"])
    question = reflect.own.messages.get(position=0)
    with pytest.raises(ValidationError):
        services.annotation_create(membership=reflect.p1, message_id=question.id, start=0, end=4, codes=["x"])
    reflect.own_answer2.status = "failed"
    reflect.own_answer2.save()
    with pytest.raises(ValidationError):
        services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer2.id, start=0, end=4,
                                   codes=["x"])
    reflect.own_answer2.status = "interrupted"
    reflect.own_answer2.save()
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer2.id, start=0, end=4, codes=["x"])


def test_editing_someone_elses_annotation_is_refused(reflect):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=12,
                                   codes=["factual"])
    with pytest.raises(NotEditable):
        services.annotation_add_code(membership=reflect.p2, annotation=a, text="dry")
    with pytest.raises(NotEditable):
        services.annotation_delete(membership=reflect.p2, annotation=a)
    with pytest.raises(NotEditable):
        services.annotation_set_memo(membership=reflect.p2, annotation=a, memo="mine now")
    assert Annotation.objects.filter(pk=a.pk).exists()


def test_coding_refused_before_reflect_and_after_discuss_starts(reflect):
    workshop = make_workshop(stage="interact")
    p = make_participant(workshop)
    conv = make_conversation(p, turns=[("q", "an answer")])
    with pytest.raises(NotEditable, match="opens in the Reflect stage"):
        services.annotation_create(membership=p, message_id=conv.messages.get(role="assistant").id, start=0, end=2,
                                   codes=["x"])
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                   codes=["x"])
    workshop_services.workshop_set_stage(workshop=reflect.workshop, stage="discuss", by=reflect.workshop.created_by)
    reflect.p1.workshop.refresh_from_db()
    with pytest.raises(NotEditable, match="read-only"):
        services.annotation_add_code(membership=reflect.p1, annotation=a, text="y")
    with pytest.raises(NotEditable):
        services.attribute_create(membership=reflect.p1, name="Tone")


def test_remove_code_keeps_at_least_one(reflect):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                   codes=["one", "two"])
    one = Code.objects.get(membership=reflect.p1, normalized="one")
    services.annotation_remove_code(membership=reflect.p1, annotation=a, code_id=one.id)
    two = Code.objects.get(membership=reflect.p1, normalized="two")
    with pytest.raises(ValidationError):
        services.annotation_remove_code(membership=reflect.p1, annotation=a, code_id=two.id)
    assert list(a.codes.values_list("text", flat=True)) == ["two"]
    # The removed code stays in the codebook.
    assert Code.objects.filter(pk=one.pk).exists()


def test_autocomplete_scoping_own_vs_group(reflect):
    services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["factual"])
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["American viewpoint", "FACTUAL"])
    assert selectors.code_suggestions(reflect.p1) == {"own": ["factual"], "group": []}
    reflect.workshop.share_code_suggestions = True
    reflect.workshop.save()
    reflect.p1.workshop.refresh_from_db()
    # Others' codes are offered, without duplicates of one's own.
    assert selectors.code_suggestions(reflect.p1) == {"own": ["factual"], "group": ["American viewpoint"]}


def test_withdrawn_participants_codes_are_not_suggested(reflect):
    reflect.workshop.share_code_suggestions = True
    reflect.workshop.save()
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["secret"])
    workshop_services.membership_withdraw(membership=reflect.p2)
    reflect.p1.workshop.refresh_from_db()
    assert selectors.code_suggestions(reflect.p1)["group"] == []


def test_focused_coding_code_in_several_attributes(reflect):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=6,
                                   codes=["respectful greeting", "Hindi first"])
    codes = {c.text: c for c in a.codes.all()}
    services.code_create(membership=reflect.p1, text="unused idea")
    tone = services.attribute_create(membership=reflect.p1, name="Tone", definition="How the model speaks")
    lang = services.attribute_create(membership=reflect.p1, name="Language", definition="Which language")
    services.attribute_add_code(membership=reflect.p1, attribute=tone, code_id=codes["respectful greeting"].id)
    services.attribute_add_code(membership=reflect.p1, attribute=lang, code_id=codes["respectful greeting"].id)
    services.attribute_add_code(membership=reflect.p1, attribute=lang, code_id=codes["Hindi first"].id)
    board = selectors.focus_board(reflect.p1)
    assert [c.text for c in board["pool"]] == ["unused idea"]
    assert set(codes["respectful greeting"].attributes.values_list("name", flat=True)) == {"Tone", "Language"}
    excerpts = selectors.attribute_excerpts(lang)
    assert [e["annotation"].id for e in excerpts] == [a.id]
    assert {c.text for c in excerpts[0]["via"]} == {"respectful greeting", "Hindi first"}
    # Someone else's code cannot be added; someone else's attribute cannot be changed.
    other = services.code_create(membership=reflect.p2, text="theirs")
    with pytest.raises(ValidationError):
        services.attribute_add_code(membership=reflect.p1, attribute=tone, code_id=other.id)
    with pytest.raises(NotEditable):
        services.attribute_update(membership=reflect.p2, attribute=tone, name="Hijacked")
    services.attribute_delete(membership=reflect.p1, attribute=lang)
    assert Code.objects.filter(membership=reflect.p1).count() == 3  # codes survive their attribute


def test_attribute_needs_a_name(reflect):
    with pytest.raises(ValidationError):
        services.attribute_create(membership=reflect.p1, name="  ")
    with pytest.raises(IntegrityError), transaction.atomic():
        Attribute.objects.create(workshop=reflect.workshop, membership=reflect.p1, name="")


def test_code_rename_refuses_duplicates(reflect):
    a = services.code_create(membership=reflect.p1, text="dry")
    services.code_create(membership=reflect.p1, text="factual")
    with pytest.raises(ValidationError):
        services.code_update(membership=reflect.p1, code=a, text="Factual")
    services.code_update(membership=reflect.p1, code=a, text="Dry tone", memo="Lacks warmth")
    a.refresh_from_db()
    assert (a.text, a.normalized, a.memo) == ("Dry tone", "dry tone", "Lacks warmth")


def test_progress_counts_turns_and_baseline(reflect):
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5, codes=["a"])
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=7, end=9, codes=["b"])
    services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=5,
                               codes=["c"])
    services.attribute_create(membership=reflect.p1, name="T")
    progress = selectors.progress_by_member(reflect.workshop)
    assert progress[reflect.p1.id] == {"turns_coded": "1/2", "baseline_coded": "1/1", "codes": 3, "attributes": 1}
    assert progress[reflect.p2.id] == {"turns_coded": "0/1", "baseline_coded": "0/1", "codes": 0, "attributes": 0}
    assert AnnotationCode.objects.count() == 3
