"""Every write to workshops, memberships, invites, stages and Familiarize progress."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from workshops import auth, defaults, i18n, withdrawal
from workshops.events import broadcast
from workshops.models import (
    PSEUDONYM_PREFIX,
    STAGE_ORDER,
    Invite,
    Membership,
    PracticeCode,
    ReadinessAttempt,
    ReadinessQuestion,
    ReturnCode,
    Role,
    StageChange,
    Withdrawal,
    Workshop,
)

PRACTICE_CODE_MAX = 120


# --- Workshops -------------------------------------------------------------------------------


@transaction.atomic
def workshop_create(
    *,
    title: str,
    slug: str,
    deployment_context: str,
    created_by,
    audience: str = "",
    system_prompt: str = "",
    language: str = "en",
    facilitator_name: str = "",
) -> Workshop:
    """Create a workshop with the built-in Familiarize content; the creator facilitates it."""
    with translation.override(language):
        workshop = Workshop.objects.create(
            title=title,
            slug=slug,
            deployment_context=deployment_context,
            audience=audience,
            system_prompt=system_prompt,
            language=language,
            created_by=created_by,
            consent_text=defaults.default_consent_text(title),
            orientation_md=defaults.default_orientation(),
            practice_text=defaults.default_practice_text(),
            practice_example_codes=defaults.default_practice_example_codes(),
        )
        for position, q in enumerate(defaults.default_readiness_questions()):
            ReadinessQuestion.objects.create(workshop=workshop, position=position, **q)
    _membership_add(
        workshop=workshop,
        user=created_by,
        role=Role.FACILITATOR,
        display_name=facilitator_name or created_by.get_full_name() or created_by.get_username(),
        consented=True,
    )
    return workshop


@transaction.atomic
def workshop_update(*, workshop: Workshop, **fields) -> Workshop:
    for name, value in fields.items():
        setattr(workshop, name, value)
    workshop.full_clean()
    workshop.save()
    broadcast(workshop.id, "workshop")
    return workshop


def membership_set_language(*, membership: Membership, language: str) -> Membership:
    """The member's own interface language ("" or the workshop's language: follow the workshop)."""
    if language and not i18n.supported(language):
        raise ValidationError(_("This language is not available."))
    value = "" if language == membership.workshop.language else language
    if membership.language != value:
        membership.language = value
        membership.save(update_fields=["language"])
    return membership


@transaction.atomic
def workshop_translations_save(*, workshop: Workshop, language: str, texts: dict, questions: dict) -> Workshop:
    """The workshop's content in `language`: `texts` maps TRANSLATABLE_FIELDS to text (blank:
    use the workshop's own); `questions` maps a readiness question's id to {"prompt", "choices",
    "explanation"}. Writing the workshop's own language here is refused (edit the fields)."""
    if not i18n.supported(language) or language == workshop.language:
        raise ValidationError(_("Choose another language than the workshop's own."))
    locked = Workshop.objects.select_for_update().get(pk=workshop.pk)
    translations = dict(locked.translations or {})
    kept = {f: (texts.get(f) or "").strip() for f in i18n.TRANSLATABLE_FIELDS if (texts.get(f) or "").strip()}
    if kept:
        translations[language] = kept
    else:
        translations.pop(language, None)
    locked.translations = translations
    locked.save(update_fields=["translations", "updated_at"])
    workshop.translations = translations
    for question in locked.readiness_questions.all():
        t = questions.get(question.id) or {}
        choices = [c.strip() for c in t.get("choices") or [] if c.strip()]
        if choices and len(choices) != len(question.choices):
            raise ValidationError(_("Question %(n)d: give as many choices as the original (%(count)d), in the same order.") % {
                "n": question.position + 1, "count": len(question.choices)})
        entry = {k: v for k, v in {"prompt": (t.get("prompt") or "").strip(), "choices": choices,
                                   "explanation": (t.get("explanation") or "").strip()}.items() if v}
        all_t = dict(question.translations or {})
        if entry:
            all_t[language] = entry
        else:
            all_t.pop(language, None)
        if all_t != (question.translations or {}):
            question.translations = all_t
            question.save(update_fields=["translations"])
    broadcast(workshop.id, "workshop")
    return workshop


@transaction.atomic
def workshop_set_stage(*, workshop: Workshop, stage: str, by) -> Workshop:
    """Move the workshop to any stage (forward or back); the change is logged."""
    if stage not in [s.value for s in STAGE_ORDER]:
        raise ValidationError(_("Unknown stage: %(stage)s") % {"stage": stage})
    locked = Workshop.objects.select_for_update().get(pk=workshop.pk)
    if locked.stage == stage:
        return locked
    StageChange.objects.create(workshop=locked, from_stage=locked.stage, to_stage=stage, changed_by=by)
    locked.stage = stage
    locked.save(update_fields=["stage", "updated_at"])
    broadcast(locked.id, "stage", {"stage": stage})
    workshop.stage = stage
    return locked


# --- Memberships and invites ------------------------------------------------------------------


def _next_pseudonym(workshop: Workshop, role: str) -> str:
    prefix = PSEUDONYM_PREFIX[Role(role)]
    numbers = [
        int(m.group(1))
        for p in Membership.objects.filter(workshop=workshop, pseudonym__startswith=prefix).values_list(
            "pseudonym", flat=True
        )
        if (m := re.fullmatch(rf"{prefix}(\d+)", p))
    ]
    return f"{prefix}{(max(numbers, default=0) + 1):02d}"


def _membership_add(*, workshop, user, role, display_name, invite=None, consented=False, language="") -> Membership:
    # Lock the workshop row so two people joining at once get different pseudonyms.
    Workshop.objects.select_for_update().filter(pk=workshop.pk).first()
    now = timezone.now()
    language = "" if language == workshop.language else (i18n.supported(language) or "")
    return Membership.objects.create(
        language=language,
        workshop=workshop,
        user=user,
        role=role,
        display_name=display_name,
        pseudonym=_next_pseudonym(workshop, role),
        invite=invite,
        consented_at=now if consented else None,
        # The consent text the person read: in their language when the facilitator wrote one.
        consent_text_snapshot=i18n.workshop_text(workshop, "consent_text", language or workshop.language) if consented else "",
    )


@transaction.atomic
def membership_add(*, workshop: Workshop, user, role: str, display_name: str) -> Membership:
    """Add a member directly (facilitator or admin action, demo data)."""
    if Membership.objects.filter(workshop=workshop, user=user).exists():
        raise ValidationError(_("This person is already a member of the workshop."))
    return _membership_add(workshop=workshop, user=user, role=role, display_name=display_name)


@transaction.atomic
def invite_create(
    *, workshop: Workshop, role: str, by, max_uses: int = 30, expires_at: datetime | None = None, label: str = ""
) -> Invite:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    return Invite.objects.create(
        workshop=workshop, role=role, created_by=by, max_uses=max_uses, expires_at=expires_at, label=label
    )


@transaction.atomic
def invite_revoke(*, invite: Invite) -> Invite:
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
    return invite


@transaction.atomic
def membership_join(*, invite: Invite, user, display_name: str = "", consent: bool = False, language: str = "") -> Membership:
    """Join a workshop with an invite; refuses an unusable invite or a second join.

    `consent=True` records consent to the workshop's current consent text in the same step
    (the join page shows the text with the tick box)."""
    invite = Invite.objects.select_for_update().select_related("workshop").get(pk=invite.pk)
    reason = invite.unusable_reason()
    if reason:
        raise ValidationError(reason)
    if Membership.objects.filter(workshop=invite.workshop, user=user).exists():
        raise ValidationError(_("You have already joined this workshop."))
    display_name = " ".join(display_name.split())[:80]
    try:
        membership = _membership_add(
            workshop=invite.workshop, user=user, role=invite.role, display_name=display_name, invite=invite,
            consented=consent, language=language,
        )
    except IntegrityError:
        raise ValidationError(_("You have already joined this workshop.")) from None
    Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
    broadcast(invite.workshop_id, "progress", {"membership": membership.id})
    return membership


@transaction.atomic
def account_join_by_link(*, invite: Invite, display_name: str = "", consent: bool, language: str = "") -> tuple[Membership, str]:
    """Join by an invite link alone: a new account (a generated username nobody types, no
    usable password), the membership with consent, and a personal return code.

    Returns the membership and the return code in clear: the caller shows it once; only
    its hash is stored."""
    if not consent:
        raise ValidationError(_("Tick the box to agree, or leave the page if you do not want to take part."))
    user = get_user_model()(username=auth.generated_username())
    user.set_unusable_password()
    user.save()
    membership = membership_join(invite=invite, user=user, display_name=display_name, consent=True, language=language)
    return membership, return_code_issue(user=user)


@transaction.atomic
def return_code_issue(*, user) -> str:
    """A new return code for `user` (the previous one stops working); returns it in clear."""
    code = auth.return_code_new()
    ReturnCode.objects.update_or_create(
        user=user, defaults={"code_hash": auth.return_code_hash(code), "created_at": timezone.now(), "last_used_at": None}
    )
    return code


@transaction.atomic
def return_code_used(*, user) -> None:
    ReturnCode.objects.filter(user=user).update(last_used_at=timezone.now())


@transaction.atomic
def account_set_login(*, user, password: str, username: str = ""):
    """Optional username and password for a person who joined by link (or a new password)."""
    User = get_user_model()
    if username and username != user.get_username():
        if User.objects.filter(username__iexact=username).exclude(pk=user.pk).exists():
            raise ValidationError({"username": _("This username cannot be used. Choose another.")})
        user.username = username
    user.set_password(password)
    user.save(update_fields=["username", "password"])
    return user


@transaction.atomic
def membership_consent(*, membership: Membership) -> Membership:
    if membership.consented_at is None:
        membership.consented_at = timezone.now()
        membership.consent_text_snapshot = i18n.workshop_text(
            membership.workshop, "consent_text", i18n.language_for(membership))
        membership.save(update_fields=["consented_at", "consent_text_snapshot"])
        broadcast(membership.workshop_id, "progress", {"membership": membership.id})
    return membership


@transaction.atomic
def membership_withdraw(*, membership: Membership, reason: str = "") -> Membership:
    """Withdraw: the member's data is excluded from views and exports from now on."""
    if membership.withdrawn_at is None:
        now = timezone.now()
        membership.withdrawn_at = now
        membership.save(update_fields=["withdrawn_at"])
        Withdrawal.objects.update_or_create(membership=membership, defaults={"reason": reason[:500], "created_at": now})
        withdrawal.run(membership)  # the apps drop what they computed or arranged with the member's data
        broadcast(membership.workshop_id, "progress", {"membership": membership.id})
    return membership


# A person's last activity is written at most this often (plus when they open another page):
# the dashboard shows "idle 6 min", so a minute's precision is enough, and 30 people clicking
# around must not cost one UPDATE per request.
SEEN_WRITE_INTERVAL = timedelta(seconds=60)


def membership_seen(*, membership: Membership, page: str = "", now: datetime | None = None) -> bool:
    """Record that a member was active (on `page`, a view name, when given).

    Throttled: nothing is written when the membership as loaded was seen less than
    SEEN_WRITE_INTERVAL ago on the same page, so most requests cost no query at all. The
    UPDATE is conditional too, so concurrent requests (htmx bursts, two tabs) write once.
    One statement, so no transaction of its own (an empty one cost every request two round
    trips on the Send path). Returns whether a row was written.
    """
    now = now or timezone.now()
    page = page[:80]
    fresh = membership.last_seen_at is not None and now - membership.last_seen_at < SEEN_WRITE_INTERVAL
    page_changed = bool(page) and page != membership.last_seen_page
    if fresh and not page_changed:
        return False
    due = Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - SEEN_WRITE_INTERVAL)
    fields = {"last_seen_at": now}
    if page:
        due |= ~Q(last_seen_page=page)
        fields["last_seen_page"] = page
    written = Membership.objects.filter(due, pk=membership.pk).update(**fields)
    membership.last_seen_at = now
    if page:
        membership.last_seen_page = page
    return bool(written)


# --- Familiarize ------------------------------------------------------------------------------


def _progress(membership: Membership, field: str) -> Membership:
    if getattr(membership, field) is None:
        setattr(membership, field, timezone.now())
        membership.save(update_fields=[field])
        broadcast(membership.workshop_id, "progress", {"membership": membership.id})
    return membership


@transaction.atomic
def orientation_complete(*, membership: Membership) -> Membership:
    return _progress(membership, "orientation_done_at")


@transaction.atomic
def practice_code_add(
    *, membership: Membership, code: str, excerpt: str = "", start: int | None = None, end: int | None = None
) -> PracticeCode:
    code = " ".join(code.split())
    if not code:
        raise ValidationError({"code": _("Write a code: a few words for what you notice.")})
    if len(code) > PRACTICE_CODE_MAX:
        raise ValidationError(
            {"code": _("Keep a code under %(n)d characters; use a memo for more.") % {"n": PRACTICE_CODE_MAX}}
        )
    # The practice text the person sees (in their language when the facilitator wrote one).
    text = i18n.workshop_text(membership.workshop, "practice_text", i18n.language_for(membership))
    if start is not None or end is not None:
        if start is None or end is None or not (0 <= start < end <= len(text)):
            raise ValidationError({"excerpt": _("That selection is not part of the practice text.")})
        excerpt = text[start:end]
    elif excerpt:
        excerpt = excerpt.strip()
        found = text.find(excerpt)
        if found < 0:
            raise ValidationError({"excerpt": _("Copy the excerpt exactly from the practice text, or leave it empty.")})
        start, end = found, found + len(excerpt)
    return PracticeCode.objects.create(membership=membership, code=code, excerpt=excerpt[:2000], start=start, end=end)


@transaction.atomic
def practice_code_delete(*, membership: Membership, practice_code_id: int) -> None:
    deleted, _x = PracticeCode.objects.filter(membership=membership, pk=practice_code_id).delete()
    if not deleted:
        raise ValidationError(_("That practice code is not yours or no longer exists."))


@transaction.atomic
def practice_complete(*, membership: Membership) -> Membership:
    if not membership.practice_codes.exists():
        raise ValidationError(_("Write at least one code on the practice text first."))
    return _progress(membership, "practice_done_at")


@transaction.atomic
def readiness_submit(*, membership: Membership, answers: dict[int, int]) -> ReadinessAttempt:
    """Score the readiness check; passing records the time on the membership."""
    questions = list(membership.workshop.readiness_questions.all())
    if not questions:
        raise ValidationError(_("The facilitator has not written a readiness check yet."))
    correct = sum(1 for q in questions if answers.get(q.id) == q.correct_choice)
    passed = correct * 100 >= membership.workshop.readiness_pass_mark * len(questions)
    attempt = ReadinessAttempt.objects.create(
        membership=membership,
        answers={str(k): v for k, v in answers.items()},
        correct=correct,
        total=len(questions),
        passed=passed,
    )
    if passed:
        _progress(membership, "readiness_passed_at")
    else:
        broadcast(membership.workshop_id, "progress", {"membership": membership.id})
    return attempt


@transaction.atomic
def readiness_questions_replace(*, workshop: Workshop, questions: list[dict]) -> None:
    workshop.readiness_questions.all().delete()
    for position, q in enumerate(questions):
        choices = [c.strip() for c in q["choices"] if c.strip()]
        if len(choices) < 2:
            raise ValidationError(_("Each question needs at least two choices."))
        if not 0 <= q["correct_choice"] < len(choices):
            raise ValidationError(_("The correct choice must be one of the choices."))
        ReadinessQuestion.objects.create(
            workshop=workshop,
            position=position,
            prompt=q["prompt"],
            choices=choices,
            correct_choice=q["correct_choice"],
            explanation=q.get("explanation", ""),
        )
