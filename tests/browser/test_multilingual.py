"""Issue 13: a Hindi-speaking, an Arabic-speaking and an English-speaking participant go through
the stages of one English workshop, each in their own interface language (join, consent,
orientation, practice, readiness, chat, coding with highlighted spans, the discussion page,
the evaluation page), with right-to-left layout for Arabic; screenshots in the test's tmp dir
(rendered with Debian's Noto fonts, which `make browser` installs)."""

import pytest
from playwright.sync_api import expect

from coding import services as coding_services
from tests.browser.conftest import login
from tests.factories import PASSWORD, facilitator_of, make_conversation, make_member, make_workshop
from workshops import services
from workshops.models import Membership, Role, Stage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("sync_orm_until_database_teardown")]

PHONE = {"width": 390, "height": 844}
HINDI_ANSWER = "मॉडल ने कहा: बच्चों की दवा की खुराक डॉक्टर से पूछें।"
ARABIC_ANSWER = "قال النموذج: اسأل الطبيب عن جرعة دواء الأطفال. السلامة الطبية أولًا."

# What each person must read on each page: (path, a phrase of the page in their language).
PAGES = {
    "hi": {"orientation": "परिचय", "practice": "अभ्यास: ओपन कोडिंग", "readiness": "तैयारी जाँच",
           "interact": "मेरी बातचीतें", "reflect": "चिंतन: कोडिंग", "transcript": "कीबोर्ड या माउस से कैसे कोड करें",
           "discuss": "समूह चर्चा", "evaluate": "उत्तरों की रेटिंग", "stage": "बातचीत"},
    "ar": {"orientation": "التمهيد", "practice": "تمرين: الترميز المفتوح", "readiness": "اختبار الجاهزية",
           "interact": "محادثاتي", "reflect": "التأمل: الترميز", "transcript": "كيف ترمّز بلوحة المفاتيح",
           "discuss": "نقاش المجموعة", "evaluate": "تقييم الإجابات", "stage": "التفاعل"},
    "en": {"orientation": "Orientation", "practice": "Practice: open coding", "readiness": "Readiness check",
           "interact": "My conversations", "reflect": "Reflect: coding", "transcript": "How to code with the keyboard",
           "discuss": "Group discussion", "evaluate": "Rating answers", "stage": "Interact"},
}


def _check(page, language, phrase, shot):
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    expect(page.locator("main")).to_contain_text(phrase)
    page.screenshot(path=str(shot), full_page=True)


def test_three_participants_each_in_their_own_language(new_page, tmp_path):
    workshop = make_workshop(title="Medicine questions for parents", slug="medicine", language="en")
    facilitator = facilitator_of(workshop)
    invite = services.invite_create(workshop=workshop, role=Role.PARTICIPANT, by=facilitator.user)
    # The facilitator wrote the consent text and the context in Hindi and Arabic too.
    services.workshop_translations_save(workshop=workshop, language="hi", questions={}, texts={
        "consent_text": "मैं सहमत हूँ कि मेरी बातचीत शोध के लिए रखी जाए।",
        "deployment_context": "माता-पिता के लिए दवा संबंधी प्रश्नों का सहायक।"})
    services.workshop_translations_save(workshop=workshop, language="ar", questions={}, texts={
        "consent_text": "أوافق على حفظ محادثاتي لأغراض البحث.",
        "deployment_context": "مساعد لأسئلة الأهل عن الأدوية."})
    arabic = make_member(workshop, consented=False)
    english = make_member(workshop)
    people = {}

    # Hindi: joins by the invite link on a phone and chooses Hindi on the join page.
    hi = new_page(viewport=PHONE)
    hi.goto(f"/join/{invite.token}/")
    hi.get_by_label("Your language").select_option("hi")
    hi.get_by_label("I have read the above and agree to take part.").check()
    hi.get_by_role("button", name="Join the workshop").click()
    expect(hi.locator("html")).to_have_attribute("lang", "hi")  # the return code page already
    hi.screenshot(path=str(tmp_path / "hi-return-code.png"), full_page=True)
    hindi = Membership.objects.get(workshop=workshop, language="hi")
    assert hindi.consent_text_snapshot.startswith("मैं सहमत हूँ")
    people["hi"] = hi

    # Arabic: logs in, reads the English consent page, switches to Arabic with the header picker.
    ar = new_page()
    login(ar, arabic.user.username, PASSWORD)
    ar.goto(f"/w/{workshop.slug}/consent/")
    expect(ar.locator("html")).to_have_attribute("lang", "en")
    ar.locator("#lang-select").select_option("ar")
    ar.locator("[data-language-picker] button").click()
    _check(ar, "ar", "أوافق على حفظ محادثاتي", tmp_path / "ar-consent.png")
    ar.locator("input[name=agree]").check()
    ar.get_by_role("button", name="أوافق").click()
    ar.wait_for_url(f"**/w/{workshop.slug}/")
    expect(ar.locator(".messages")).to_contain_text(f"{arabic.pseudonym}")
    arabic.refresh_from_db()
    assert arabic.language == "ar" and arabic.consent_text_snapshot.startswith("أوافق")
    people["ar"] = ar

    en = new_page()
    login(en, english.user.username, PASSWORD)
    people["en"] = en

    slug = workshop.slug
    for language, page in people.items():
        words = PAGES[language]
        page.goto(f"/w/{slug}/familiarize/")
        _check(page, language, words["orientation"], tmp_path / f"{language}-orientation.png")
        page.goto(f"/w/{slug}/familiarize/practice/")
        _check(page, language, words["practice"], tmp_path / f"{language}-practice.png")
        page.goto(f"/w/{slug}/familiarize/readiness/")
        _check(page, language, words["readiness"], tmp_path / f"{language}-readiness.png")
    assert people["hi"].evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Interact: the stage bar and the chat page in each language.
    services.workshop_set_stage(workshop=workshop, stage=Stage.INTERACT, by=facilitator.user)
    for language, page in people.items():
        page.goto(f"/w/{slug}/interact/")
        _check(page, language, PAGES[language]["interact"], tmp_path / f"{language}-chat.png")
        expect(page.locator(".stage-bar li.current")).to_have_text(PAGES[language]["stage"])

    # Reflect: each codes their own conversation; spans in Devanagari and Arabic.
    members = {"hi": hindi, "ar": arabic, "en": english}
    answers = {"hi": HINDI_ANSWER, "ar": ARABIC_ANSWER, "en": "Ask a doctor about the dose of children's medicine."}
    conversations = {}
    services.workshop_set_stage(workshop=workshop, stage=Stage.REFLECT, by=facilitator.user)
    for language, member in members.items():
        conversation = make_conversation(member, turns=[("?", answers[language])])
        answer = conversation.messages.get(role="assistant")
        text = answer.content
        start = text.find(":") + 2 if ":" in text else 0
        coding_services.annotation_create(membership=member, message_id=answer.id, start=start,
                                          end=min(len(text), start + 20), codes=[{"hi": "डॉक्टर से पूछें",
                                          "ar": "السلامة الطبية", "en": "Medical safety"}[language]])
        conversations[language] = conversation
    for language, page in people.items():
        page.goto(f"/w/{slug}/reflect/")
        _check(page, language, PAGES[language]["reflect"], tmp_path / f"{language}-reflect.png")
        page.goto(f"/w/{slug}/reflect/c/{conversations[language].id}/")
        _check(page, language, PAGES[language]["transcript"], tmp_path / f"{language}-transcript.png")
        expect(page.locator("mark.hl").first).to_be_visible()

    services.workshop_set_stage(workshop=workshop, stage=Stage.DISCUSS, by=facilitator.user)
    for language, page in people.items():
        page.goto(f"/w/{slug}/discuss/")
        _check(page, language, PAGES[language]["discuss"], tmp_path / f"{language}-discuss.png")

    services.workshop_set_stage(workshop=workshop, stage=Stage.EVALUATE, by=facilitator.user)
    for language, page in people.items():
        page.goto(f"/w/{slug}/evaluate/rate/")
        _check(page, language, PAGES[language]["evaluate"], tmp_path / f"{language}-evaluate.png")

    # Arabic reads right to left: the main column's text starts at the right edge.
    align = people["ar"].evaluate("getComputedStyle(document.querySelector('main h1')).direction")
    assert align == "rtl"
    for page in people.values():
        assert not page.js_errors, page.js_errors

    # The facilitator works in Hindi: the dashboard (a table of everyone's progress) and the page
    # where the workshop's content is written in other languages.
    fac = new_page()
    login(fac, facilitator.user.username, PASSWORD)
    fac.goto(f"/w/{slug}/dashboard/")
    fac.locator("#lang-select").select_option("hi")
    fac.locator("[data-language-picker] button").click()
    _check(fac, "hi", "डैशबोर्ड", tmp_path / "hi-facilitator-dashboard.png")
    fac.goto(f"/w/{slug}/texts/?lang=ar")
    _check(fac, "hi", "अन्य भाषाओं में कार्यशाला की सामग्री", tmp_path / "hi-facilitator-texts.png")
    expect(fac.get_by_label("सहमति पाठ")).to_have_value("أوافق على حفظ محادثاتي لأغراض البحث.")
    assert not fac.js_errors, fac.js_errors

    # On the phone the picker applies a choice at once (its button is hidden to keep the header
    # on one line), and the header still fits.
    hi.goto(f"/w/{slug}/")
    expect(hi.locator("[data-language-picker] button")).to_be_hidden()
    hi.locator("#lang-select").select_option("ar")
    expect(hi.locator("html")).to_have_attribute("dir", "rtl")
    assert hi.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    hi.screenshot(path=str(tmp_path / "phone-switched-to-ar.png"))
    hindi.refresh_from_db()
    assert hindi.language == "ar"
    print("screenshots in", tmp_path)
