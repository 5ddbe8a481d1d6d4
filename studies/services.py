"""Every write of studies: studies, access, new workshops from a template, axis correspondences."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from studies.models import AxisMatch, ConversationOrigin, MatchStatus, Study, StudyResearcher, StudyWorkshop, WorkshopOrigin
from workshops import permissions
from workshops import services as workshop_services
from workshops.models import Membership, ReadinessQuestion, Role, Workshop

# Suggestions below this cosine similarity are not offered (all-MiniLM-L6-v2, name + definition).
SUGGEST_MIN_SIMILARITY = 0.35


def _require(user, workshop: Workshop, roles) -> Membership:
    membership, refusal = permissions.access(user, workshop, roles)
    if refusal is not None:
        raise PermissionDenied(_("You cannot do this for %(title)s.") % {"title": workshop.title})
    return membership


@transaction.atomic
def study_create(*, title: str, slug: str, deployment_context: str = "", by, workshops=()) -> Study:
    if Study.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": _("A study with this short name exists already.")})
    study = Study.objects.create(title=title, slug=slug, deployment_context=deployment_context, created_by=by)
    for workshop in workshops:
        study_add_workshop(study=study, workshop=workshop, by=by)
    return study


@transaction.atomic
def study_add_workshop(*, study: Study, workshop: Workshop, by) -> StudyWorkshop:
    """A workshop's facilitator puts it in a study; the study's researchers get access to it."""
    _require(by, workshop, permissions.FACILITATOR)
    if StudyWorkshop.objects.filter(workshop=workshop).exclude(study=study).exists():
        raise ValidationError(_("This workshop belongs to another study already."))
    link, _created = StudyWorkshop.objects.get_or_create(study=study, workshop=workshop, defaults={"added_by": by})
    for grant in study.researchers.select_related("user"):
        _ensure_researcher(workshop, grant.user)
    return link


def _ensure_researcher(workshop: Workshop, user) -> Membership:
    existing = Membership.objects.filter(workshop=workshop, user=user).first()
    if existing is not None:
        return existing  # a member keeps their role (and a withdrawn person stays withdrawn)
    return workshop_services.membership_add(workshop=workshop, user=user, role=Role.RESEARCHER,
                                            display_name=user.get_full_name() or user.get_username())


def can_manage_study(user, study: Study) -> bool:
    """The study's creator, or a facilitator of one of its workshops."""
    if not user.is_authenticated:
        return False
    if study.created_by_id == user.pk:
        return True
    return permissions.readable_workshops(user, permissions.FACILITATOR).filter(study_link__study=study).exists()


@transaction.atomic
def study_grant(*, study: Study, user, by) -> StudyResearcher:
    """Researcher access to the whole study: a researcher membership in each workshop."""
    if not can_manage_study(by, study):
        raise PermissionDenied(_("Only the study's facilitators give access to it."))
    grant, _created = StudyResearcher.objects.get_or_create(study=study, user=user, defaults={"granted_by": by})
    for link in study.members.select_related("workshop"):
        _ensure_researcher(link.workshop, user)
    return grant


@transaction.atomic
def workshop_grant(*, workshop: Workshop, user, by) -> Membership:
    """Researcher access to one workshop."""
    _require(by, workshop, permissions.FACILITATOR)
    return _ensure_researcher(workshop, user)


# --- New workshop from a template ---------------------------------------------------------------

TEMPLATE_FIELDS = ["deployment_context", "audience", "system_prompt", "language", "consent_text", "orientation_md",
                   "practice_text", "practice_example_codes", "readiness_pass_mark", "show_model_names",
                   "share_code_suggestions"]


@transaction.atomic
def workshop_from_template(*, template: Workshop, title: str, slug: str, by, study: Study | None = None) -> Workshop:
    """A new workshop with the template's setup: context, audience, system prompt, models and
    compare settings, orientation, practice sample, readiness questions, consent text, baseline
    conversations (copied, origin recorded) and rubric texts. Never participants or their data."""
    from evaluation.models import EvaluationSettings, RubricVersion
    from llm_gateway.models import Conversation, GatewaySettings, Message, WorkshopModel

    _require(by, template, permissions.FACILITATOR)
    if Workshop.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": _("A workshop with this short name exists already.")})
    workshop = workshop_services.workshop_create(title=title, slug=slug, deployment_context=template.deployment_context,
                                                 created_by=by, audience=template.audience,
                                                 system_prompt=template.system_prompt, language=template.language)
    for name in TEMPLATE_FIELDS:
        setattr(workshop, name, getattr(template, name))
    workshop.save()
    facilitator = Membership.objects.get(workshop=workshop, user=by)
    copied = {}

    ReadinessQuestion.objects.filter(workshop=workshop).delete()
    questions = [ReadinessQuestion(workshop=workshop, position=q.position, prompt=q.prompt, choices=q.choices,
                                   correct_choice=q.correct_choice, explanation=q.explanation)
                 for q in template.readiness_questions.order_by("position", "id")]
    ReadinessQuestion.objects.bulk_create(questions)
    copied["readiness_questions"] = len(questions)

    models = [WorkshopModel(workshop=workshop, endpoint_key=m.endpoint_key, position=m.position, blind_label=m.blind_label)
              for m in WorkshopModel.objects.filter(workshop=template).order_by("position", "id")]
    WorkshopModel.objects.bulk_create(models)
    copied["models"] = len(models)
    gateway = GatewaySettings.objects.filter(workshop=template).first()
    if gateway is not None:
        GatewaySettings.objects.update_or_create(workshop=workshop, defaults={
            "token_budget": gateway.token_budget, "max_answer_tokens": gateway.max_answer_tokens,
            "compare_mode": gateway.compare_mode, "compare_variants": gateway.compare_variants,
            "compare_count": gateway.compare_count})
    evaluation = EvaluationSettings.objects.filter(workshop=template).first()
    if evaluation is not None:
        EvaluationSettings.objects.update_or_create(workshop=workshop, defaults={
            "answers_per_person": evaluation.answers_per_person, "raters_per_answer": evaluation.raters_per_answer,
            "include_participant_conversations": evaluation.include_participant_conversations})

    # Baseline conversations: the facilitators' shared set only (never a participant's own).
    baselines = Conversation.objects.filter(workshop=template, is_baseline=True).exclude(owner__role=Role.PARTICIPANT)
    n_conversations = 0
    for source in baselines.order_by("id"):
        conversation = Conversation.objects.create(
            workshop=workshop, owner=facilitator, endpoint_key=source.endpoint_key, model_label=source.model_label,
            title=source.title, is_baseline=True, compare_mode=source.compare_mode, created_at=source.created_at)
        ConversationOrigin.objects.create(conversation=conversation, source=source, source_workshop=template)
        ids = {}
        pending_links = []
        skip = {"id", "conversation", "reply_to", "superseded_by"}
        for message in source.messages.order_by("position", "id"):
            values = {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields if f.name not in skip}
            copy = Message.objects.create(conversation=conversation, **values)
            ids[message.pk] = copy
            pending_links.append((copy, message.reply_to_id, message.superseded_by_id))
        for copy, reply_to, superseded_by in pending_links:
            if reply_to or superseded_by:
                copy.reply_to = ids.get(reply_to)
                copy.superseded_by = ids.get(superseded_by)
                copy.save(update_fields=["reply_to", "superseded_by"])
        n_conversations += 1
    copied["baseline_conversations"] = n_conversations

    rubrics = []
    for version in RubricVersion.objects.filter(rubric__workshop=template).order_by("rubric_id", "-number"):
        if rubrics and rubrics[-1]["rubric_id"] == version.rubric_id:
            continue
        rubrics.append({"rubric_id": version.rubric_id, "version": version.number, "name": version.name,
                        "definition": version.definition, "scale": version.scale, "should": version.should,
                        "should_not": version.should_not, "examples": version.examples})
    copied["rubrics"] = len(rubrics)
    WorkshopOrigin.objects.create(workshop=workshop, template=template, template_title=template.title, copied=copied,
                                  rubrics=rubrics, created_by=by)
    link = StudyWorkshop.objects.filter(workshop=template).select_related("study").first()
    target = study or (link.study if link else None)
    if target is not None:
        study_add_workshop(study=target, workshop=workshop, by=by)
    return workshop


# --- Correspondences between two groups' final axes --------------------------------------------


@transaction.atomic
def matches_suggest(*, study: Study, by, workshops: list[Workshop]) -> list[AxisMatch]:
    """Store suggested correspondences for each pair of the workshops (best counterpart per axis,
    by meaning); decisions already taken are kept as they are."""
    from studies import selectors

    for workshop in workshops:
        _require(by, workshop, permissions.STAFF)
    created = []
    for i, a in enumerate(workshops):
        for b in workshops[i + 1:]:
            for axis_a, axis_b, similarity in selectors.suggested_pairs(a, b, min_similarity=SUGGEST_MIN_SIMILARITY):
                match, made = AxisMatch.objects.get_or_create(
                    study=study, axis_a=axis_a, axis_b=axis_b, defaults={"similarity": similarity})
                if made:
                    created.append(match)
                elif match.status == MatchStatus.SUGGESTED and match.similarity != similarity:
                    match.similarity = similarity
                    match.save(update_fields=["similarity"])
    return created


@transaction.atomic
def matches_request(*, study: Study, by, workshops: list[Workshop]):
    """Queue a `study_match` job (on the first workshop compared) that stores suggestions."""
    from workshops import jobs

    if len(workshops) < 2:
        raise ValidationError(_("Choose two or more workshops to compare."))
    membership = None
    for workshop in workshops:
        member = _require(by, workshop, permissions.STAFF)
        membership = membership or member
    return jobs.job_request(workshop=workshops[0], kind="study_match", by=membership,
                            params={"study": study.pk, "workshops": [w.pk for w in workshops], "user": by.pk})


def _check_match_access(match: AxisMatch, by) -> None:
    for axis in (match.axis_a, match.axis_b):
        _require(by, axis.workshop, permissions.STAFF)


@transaction.atomic
def match_decide(*, match: AxisMatch, by, status: str, note: str = "", axis_b=None) -> AxisMatch:
    """Confirm or reject a match, or edit it (another counterpart from the same group, confirmed)."""
    match = AxisMatch.objects.select_for_update().select_related("axis_a__workshop", "axis_b__workshop").get(pk=match.pk)
    _check_match_access(match, by)
    if status not in (MatchStatus.CONFIRMED, MatchStatus.REJECTED, MatchStatus.SUGGESTED):
        raise ValidationError(_("Unknown decision."))
    if axis_b is not None and axis_b.pk != match.axis_b_id:
        if axis_b.workshop_id != match.axis_b.workshop_id:
            raise ValidationError(_("The counterpart must be an axis of the same group."))
        if AxisMatch.objects.filter(study=match.study, axis_a=match.axis_a, axis_b=axis_b).exists():
            raise ValidationError(_("That pair is listed already."))
        if match.suggested_axis_b_id is None:
            match.suggested_axis_b_id = match.axis_b_id
        match.axis_b = axis_b
        match.similarity = None
        status = MatchStatus.CONFIRMED
    match.status = status
    match.note = (note or "")[:1000]
    match.decided_by = by if status != MatchStatus.SUGGESTED else None
    match.decided_at = timezone.now() if status != MatchStatus.SUGGESTED else None
    match.save()
    return match
