import pytest
from django.urls import reverse

from coding import services
from coding.models import Annotation, Attribute, Code
from tests.coding.conftest import MIXED
from tests.factories import make_member
from workshops import services as workshop_services
from workshops.models import Job

pytestmark = pytest.mark.django_db

FETCH = {"HTTP_X_CODING": "1"}


def url(name, workshop, *args):
    return reverse(f"coding:{name}", args=[workshop.slug, *args])


def test_participant_codes_through_http_and_finds_it_after_reload(reflect, client_for):
    client = client_for(reflect.p1)
    start = MIXED.index("中国历史")
    response = client.post(url("annotation_create", reflect.workshop), {
        "message": reflect.own_answer.id, "start": start, "end": start + 4, "code": ["Chinese history", "broad"],
        "memo": "Mentions <script>alert(1)</script>",
    }, **FETCH)
    assert response.status_code == 201
    ann = Annotation.objects.get()
    assert response["X-Annotation-Id"] == str(ann.id)
    assert ann.excerpt == "中国历史"
    body = response.content.decode()
    assert "Model answer 1" in body  # the fragment keeps the answer's number
    assert f'id="turn-{reflect.own_answer.id}"' in body and "&lt;script&gt;" in body and "<script>alert" not in body
    page = client.get(url("transcript", reflect.workshop, reflect.own.id)).content.decode()
    assert 'data-ann="%d"' % ann.id in page and "Chinese history" in page
    assert 'id="coder"' in page  # editable in the Reflect stage
    index = client.get(url("index", reflect.workshop)).content.decode()
    assert '<dd data-stat="turns">1/2</dd>' in index and '<dd data-stat="baseline">0/1</dd>' in index


def test_bad_input_gets_clear_message(reflect, client_for):
    client = client_for(reflect.p1)
    r = client.post(url("annotation_create", reflect.workshop),
                    {"message": reflect.own_answer.id, "start": 0, "end": 10_000, "code": ["x"]}, **FETCH)
    assert r.status_code == 400 and "outside the answer" in r.content.decode()
    r = client.post(url("annotation_create", reflect.workshop),
                    {"message": reflect.own_answer.id, "start": 0, "end": 5, "code": [""]}, **FETCH)
    assert r.status_code == 400 and "cannot be empty" in r.content.decode()
    r = client.post(url("annotation_create", reflect.workshop),
                    {"message": reflect.own_answer.id, "start": 0, "end": 5, "code": ["y" * 130]}, **FETCH)
    assert r.status_code == 400 and "at most 120" in r.content.decode()
    assert not Annotation.objects.exists()


def test_other_participants_conversation_and_annotation_are_off_limits(reflect, client_for):
    ann = services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=5,
                                     codes=["theirs"])
    client = client_for(reflect.p1)
    assert client.get(url("transcript", reflect.workshop, reflect.other.id)).status_code == 404
    r = client.post(url("annotation_create", reflect.workshop),
                    {"message": reflect.other_answer.id, "start": 0, "end": 5, "code": ["x"]}, **FETCH)
    assert r.status_code == 403
    r = client.post(url("annotation_add_code", reflect.workshop, ann.id), {"code": "mine"}, **FETCH)
    assert r.status_code == 403 and "your own" in r.content.decode()
    r = client.post(url("annotation_delete", reflect.workshop, ann.id), **FETCH)
    assert r.status_code == 403
    assert Annotation.objects.filter(pk=ann.pk).exists()
    # The baseline page shows only one's own highlights.
    page = client.get(url("transcript", reflect.workshop, reflect.baseline.id)).content.decode()
    assert "theirs" not in page


def test_stage_rules_for_participants(reflect, client_for):
    client = client_for(reflect.p1)
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5, codes=["x"])
    workshop_services.workshop_set_stage(workshop=reflect.workshop, stage="interact", by=reflect.workshop.created_by)
    assert client.get(url("index", reflect.workshop)).status_code == 403
    workshop_services.workshop_set_stage(workshop=reflect.workshop, stage="discuss", by=reflect.workshop.created_by)
    page = client.get(url("transcript", reflect.workshop, reflect.own.id))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="coder"' not in body and "read-only" in body
    r = client.post(url("annotation_create", reflect.workshop),
                    {"message": reflect.own_answer.id, "start": 6, "end": 9, "code": ["late"]}, **FETCH)
    assert r.status_code == 403 and "read-only" in r.content.decode()


def test_staff_view_everything_read_only_in_any_stage(reflect, client_for):
    services.annotation_create(membership=reflect.p2, message_id=reflect.other_answer.id, start=0, end=6,
                               codes=["festive"])
    workshop_services.workshop_set_stage(workshop=reflect.workshop, stage="interact", by=reflect.workshop.created_by)
    researcher = make_member(reflect.workshop, role="researcher")
    for member in (reflect.facilitator, researcher):
        client = client_for(member)
        page = client.get(url("transcript", reflect.workshop, reflect.other.id)).content.decode()
        assert "festive" in page and 'id="coder"' not in page
        r = client.post(url("annotation_create", reflect.workshop),
                        {"message": reflect.other_answer.id, "start": 0, "end": 5, "code": ["x"]}, **FETCH)
        assert r.status_code == 403
        assert client.get(url("compare", reflect.workshop)).status_code == 200
        assert client.get(url("focus", reflect.workshop) + "?coder=" + reflect.p2.pseudonym).status_code == 200
    # Participants do not get the comparison or the exports.
    client = client_for(reflect.p1)
    assert client.get(url("compare", reflect.workshop)).status_code == 403
    assert client.get(url("export_annotations", reflect.workshop)).status_code == 403


def test_non_member_gets_404(reflect, client_for):
    from tests.factories import make_workshop, make_participant

    outsider = make_participant(make_workshop(stage="reflect"))
    assert client_for(outsider).get(url("index", reflect.workshop)).status_code == 404


def test_focus_board_forms_with_and_without_script(reflect, client_for):
    client = client_for(reflect.p1)
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["warmth", "politeness"])
    r = client.post(url("attribute_create", reflect.workshop), {"name": "Tone", "definition": "How it speaks"})
    assert r.status_code == 302  # no script: back to the page
    tone = Attribute.objects.get()
    warmth = Code.objects.get(normalized="warmth")
    r = client.post(url("attribute_add_code", reflect.workshop, tone.id), {"code": warmth.id}, **FETCH)
    assert r.status_code == 200 and 'id="board"' in r.content.decode()
    assert list(tone.codes.values_list("text", flat=True)) == ["warmth"]
    r = client.post(url("attribute_update", reflect.workshop, tone.id), {"name": "", "definition": "x"}, **FETCH)
    assert r.status_code == 400 and "name" in r.content.decode()
    page = client.get(url("focus", reflect.workshop)).content.decode()
    assert "politeness" in page.split('data-pool-list')[1].split("</ul>")[0]  # ungrouped stays in the pool
    excerpts = client.get(url("attribute_excerpts", reflect.workshop, tone.id)).content.decode()
    assert MIXED[:5] in excerpts


def test_dashboard_shows_reflect_columns(reflect, client_for):
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5, codes=["x"])
    page = client_for(reflect.facilitator).get(reverse("workshops:dashboard", args=[reflect.workshop.slug]))
    body = page.content.decode()
    assert "Turns coded" in body and "Baseline conversations coded" in body and "1/2" in body


def test_research_page_lists_exports(reflect, client_for):
    body = client_for(reflect.facilitator).get(reverse("workshops:research", args=[reflect.workshop.slug])).content.decode()
    for name in ("annotations.csv", "codebook.csv", "focused-codes.csv", "codebook.qdc"):
        assert name in body


def test_summary_generate_and_cache(reflect, client_for, celery_eager, django_capture_on_commit_callbacks):
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["=HYPERLINK(\"x\")", "warm"])
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["Warm", "<img src=x onerror=alert(1)>"])
    fac = client_for(reflect.facilitator)
    with django_capture_on_commit_callbacks(execute=True):
        r = fac.post(url("summary_generate", reflect.workshop))
    assert r.status_code == 302
    job = Job.objects.get()
    assert job.status == "done" and job.progress == 100
    labels = {row["label"].casefold(): row for row in job.result["labels"]}
    assert labels["warm"]["count"] == 2 and labels["warm"]["participants"] == 2
    terms = {t["term"] for t in job.result["topics"]}
    assert "mughal" in terms or "thanksgiving" in terms
    # Same data: the cached job is reused, no second computation.
    fac.post(url("summary_generate", reflect.workshop))
    assert Job.objects.count() == 1
    page = fac.get(url("summary", reflect.workshop)).content.decode()
    assert "Up to date" in page and "=HYPERLINK(&quot;x&quot;)" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # word cloud and table
    # A participant sees the aggregate and only their own section.
    client = client_for(reflect.p1)
    page = client.get(url("summary", reflect.workshop)).content.decode()
    assert f'data-participant="{reflect.p1.pseudonym}"' in page
    assert f'data-participant="{reflect.p2.pseudonym}"' not in page
    # A change makes it stale; generating again computes a new one.
    fac = client_for(reflect.facilitator)
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=7, end=9, codes=["new"])
    assert "The data has changed since" in fac.get(url("summary", reflect.workshop)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        fac.post(url("summary_generate", reflect.workshop))
    assert Job.objects.count() == 2 and Job.objects.filter(status="done").count() == 2


def test_only_facilitator_generates_summary(reflect, client_for):
    r = client_for(reflect.p1).post(url("summary_generate", reflect.workshop))
    assert r.status_code == 403
    assert not Job.objects.exists()


def test_superseded_answers_are_hidden_and_not_codable(reflect, client_for):
    from llm_gateway.models import Message

    question = reflect.own.messages.get(position=0)
    Message.objects.create(conversation=reflect.own, role="assistant", content="OLD ANSWER replaced",
                           status="superseded", position=50, reply_to=question)
    page = client_for(reflect.p1).get(url("transcript", reflect.workshop, reflect.own.id)).content.decode()
    assert "OLD ANSWER" not in page and "An earlier answer to this question was replaced" in page
    old = Message.objects.get(content="OLD ANSWER replaced")
    r = client_for(reflect.p1).post(url("annotation_create", reflect.workshop),
                                    {"message": old.id, "start": 0, "end": 3, "code": ["x"]}, **FETCH)
    assert r.status_code == 400


def test_comparison_shows_each_coder_side_by_side_without_withdrawn(reflect, client_for):
    third = make_member(reflect.workshop)
    services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=30,
                               codes=["neutral but nuanced"])
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=15, end=60,
                               codes=["American viewpoint", "dry"])
    services.annotation_create(membership=third, message_id=reflect.baseline_answer.id, start=0, end=10,
                               codes=["WITHDRAWN CODE"])
    workshop_services.membership_withdraw(membership=third)
    body = client_for(reflect.facilitator).get(url("compare", reflect.workshop)).content.decode()
    assert body.count("data-cluster") == 1  # overlapping spans form one group
    assert f'data-coder="{reflect.p1.pseudonym}"' in body and f'data-coder="{reflect.p2.pseudonym}"' in body
    assert "neutral but nuanced" in body and "American viewpoint" in body and "dry" in body
    assert "WITHDRAWN CODE" not in body and "Highlighted by 2 participants" in body


def test_dashboard_events_only_when_progress_changes(reflect, monkeypatch):
    sent = []
    monkeypatch.setattr("coding.services.broadcast", lambda wid, kind, payload=None: sent.append(kind))
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                   codes=["x"])
    assert sent == ["reflect"]
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=6, end=9, codes=["x"])
    services.annotation_set_memo(membership=reflect.p1, annotation=a, memo="m")
    assert sent == ["reflect"]  # same turn, existing code, a memo: no count changed
    services.annotation_add_code(membership=reflect.p1, annotation=a, text="new code")
    assert sent == ["reflect", "reflect"]


def test_failed_form_post_does_not_redirect_off_site(reflect, client_for):
    r = client_for(reflect.p1).post(url("attribute_create", reflect.workshop),
                                    {"name": "", "next": "https://evil.example/"})
    assert r.status_code == 302 and "evil" not in r["Location"]


def test_comparison_refreshes_as_a_fragment(reflect, client_for):
    services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["factual"])
    r = client_for(reflect.facilitator).get(url("compare", reflect.workshop), HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert body.lstrip().startswith('<div id="compare-live"') and "factual" in body and "<html" not in body


def test_baseline_set_includes_facilitator_sandbox_conversations_marked_baseline(reflect, client_for):
    from llm_gateway.models import Conversation

    Conversation.objects.filter(owner=reflect.facilitator, is_baseline=False).update(is_sandbox=True)
    body = client_for(reflect.p1).get(url("index", reflect.workshop)).content.decode()
    assert "What is Thanksgiving?" in body and "Sandbox only" not in body
    staff = client_for(reflect.facilitator).get(url("index", reflect.workshop)).content.decode()
    assert "What is Thanksgiving?" in staff and "Sandbox only" not in staff
    sandbox = Conversation.objects.get(title="Sandbox only")
    assert client_for(reflect.p1).get(url("transcript", reflect.workshop, sandbox.id)).status_code == 404


def test_attribute_excerpts_are_private_to_their_participant(reflect, client_for):
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                   codes=["private"])
    attr = services.attribute_create(membership=reflect.p1, name="Mine", code_ids=[a.codes.get().id])
    assert client_for(reflect.p2).get(url("attribute_excerpts", reflect.workshop, attr.id)).status_code == 404
    body = client_for(reflect.facilitator).get(url("attribute_excerpts", reflect.workshop, attr.id)).content.decode()
    assert MIXED[:5] in body and f"?coder={reflect.p1.pseudonym}" in body


HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_X_CODING": "1"}


def test_rename_control_on_own_codebook_only_when_editable(reflect, client_for):
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["warmth"])
    code = Code.objects.get()
    page = client_for(reflect.p1).get(url("focus", reflect.workshop)).content.decode()
    action = url("code_update", reflect.workshop, code.id)
    assert f'hx-post="{action}"' in page and f'action="{action}"' in page  # htmx, and a plain post without script
    assert f'<label for="code-text-{code.id}">New name for “warmth”</label>' in page
    assert f'id="code-text-{code.id}" name="text" value="warmth"' in page
    staff = client_for(reflect.facilitator).get(url("focus", reflect.workshop) + f"?coder={reflect.p1.pseudonym}")
    assert staff.status_code == 200 and "code-text-" not in staff.content.decode()  # read-only for staff
    workshop_services.workshop_set_stage(workshop=reflect.workshop, stage="discuss", by=reflect.workshop.created_by)
    assert "code-text-" not in client_for(reflect.p1).get(url("focus", reflect.workshop)).content.decode()


def test_rename_code_with_htmx_updates_board_and_highlights(reflect, client_for):
    client = client_for(reflect.p1)
    ann = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                     codes=["warmht", "factual"])
    code = Code.objects.get(normalized="warmht")
    attr = services.attribute_create(membership=reflect.p1, name="Tone", code_ids=[code.id])
    r = client.post(url("code_update", reflect.workshop, code.id), {"text": "  warmth  <b>"}, **HTMX)
    assert r.status_code == 200
    body = r.content.decode()
    assert body.lstrip().startswith('<div id="board"') and "<html" not in body  # only the board fragment
    assert "warmth &lt;b&gt;" in body and "warmht" not in body
    code.refresh_from_db()
    assert (code.text, code.normalized) == ("warmth <b>", "warmth <b>")
    assert list(attr.codes.values_list("text", flat=True)) == ["warmth <b>"]
    assert set(ann.codes.values_list("text", flat=True)) == {"warmth <b>", "factual"}
    page = client.get(url("transcript", reflect.workshop, reflect.own.id)).content.decode()
    assert "warmth &lt;b&gt;" in page and "warmht" not in page
    # Changing only the case of a name is a rename, not a clash with itself.
    r = client.post(url("code_update", reflect.workshop, code.id), {"text": "Warmth <b>"}, **HTMX)
    assert r.status_code == 200 and Code.objects.get(pk=code.pk).text == "Warmth <b>"


@pytest.mark.parametrize("text, message", [
    ("", "cannot be empty"),
    ("   ", "cannot be empty"),
    ("x" * 121, "at most 120 characters"),
    ("FACTUAL", "You already have the code “FACTUAL”"),
])
def test_rename_refusals_are_clear_and_change_nothing(reflect, client_for, text, message):
    client = client_for(reflect.p1)
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["warmth", "factual"])
    code = Code.objects.get(normalized="warmth")
    r = client.post(url("code_update", reflect.workshop, code.id), {"text": text}, **HTMX)
    assert r.status_code == 400 and r["Content-Type"].startswith("text/plain")
    assert message in r.content.decode()
    assert sorted(Code.objects.values_list("text", flat=True)) == ["factual", "warmth"]
    # Without script: back to the codebook row with the same message.
    r = client.post(url("code_update", reflect.workshop, code.id),
                    {"text": text, "next": url("focus", reflect.workshop) + f"#code-row-{code.id}"})
    assert r.status_code == 302 and r["Location"] == url("focus", reflect.workshop) + f"#code-row-{code.id}"
    page = client.get(r["Location"]).content.decode()
    assert message.replace("“", "&ldquo;") in page or message in page
    assert Code.objects.get(pk=code.pk).text == "warmth"


def test_rename_without_script_redirects_with_a_message(reflect, client_for):
    client = client_for(reflect.p1)
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["warmth"])
    code = Code.objects.get()
    r = client.post(url("code_update", reflect.workshop, code.id), {"text": "kindness"}, follow=True)
    assert r.redirect_chain[-1][0] == url("focus", reflect.workshop)
    body = r.content.decode()
    assert "The code is now called “kindness”." in body and f'value="kindness"' in body


def test_renaming_someone_elses_code_is_refused(reflect, client_for):
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=5,
                               codes=["theirs"])
    code = Code.objects.get()
    r = client_for(reflect.p1).post(url("code_update", reflect.workshop, code.id), {"text": "mine"}, **HTMX)
    assert r.status_code == 403 and Code.objects.get(pk=code.pk).text == "theirs"
    r = client_for(reflect.facilitator).post(url("code_update", reflect.workshop, code.id), {"text": "x"}, **HTMX)
    assert r.status_code == 403 and Code.objects.get(pk=code.pk).text == "theirs"
