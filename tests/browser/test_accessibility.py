"""WCAG 2.1 AA checks with axe-core on the Familiarize pages, at desktop and phone widths."""

from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM_ARGS, login  # noqa: F401
from tests.factories import PASSWORD, facilitator_of, make_participant, make_workshop
from workshops import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).resolve().parent.parent / "vendor" / "axe.min.js").read_text()


def axe_violations(page):
    # The app's CSP forbids inline script; this test context bypasses it to inject axe only.
    page.add_script_tag(content=AXE)
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_familiarize_pages_have_no_axe_violations(browser, asgi_server, width):
    workshop = make_workshop(title="Accessible workshop")
    participant = make_participant(workshop)
    services.practice_code_add(membership=participant, code="overclaims health")
    invite = services.invite_create(workshop=workshop, role="participant", by=facilitator_of(workshop).user)
    context = browser.new_context(base_url=asgi_server, bypass_csp=True, viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        problems = {}
        page.goto(f"/join/{invite.token}/")
        problems["join"] = axe_violations(page)
        page.goto("/login/")
        problems["login"] = axe_violations(page)
        page.goto("/return/")
        problems["return"] = axe_violations(page)
        login(page, participant.user.username, PASSWORD)
        page.goto("/account/")
        problems["account"] = axe_violations(page)
        for path in ["", "familiarize/", "familiarize/practice/", "familiarize/readiness/", "withdraw/"]:
            page.goto(f"/w/{workshop.slug}/{path}")
            problems[path or "home"] = axe_violations(page)
        context.clear_cookies()
        login(page, facilitator_of(workshop).user.username, PASSWORD)
        for path in ["dashboard/", "dashboard/?view=all", "stage/?stage=interact", "invites/", "settings/",
                     "familiarize/edit/"]:
            page.goto(f"/w/{workshop.slug}/{path}")
            problems[path] = axe_violations(page)
        problems = {k: v for k, v in problems.items() if v}
        assert not problems, problems
    finally:
        context.close()
