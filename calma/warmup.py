"""Build at start what a server process would otherwise build in its first requests.

Called by calma/asgi.py once Django is set up, before it freezes what the process has built
(gc.freeze). Two reasons, both measured with benchmarks/discussion_fanout.py at 100 clients:

- The first board change after a start took 94 ms to reach the last client instead of about
  18 ms: its command spent 56 ms importing the template tag libraries (markdown-it among
  them), setting up the template engine and compiling the card's templates. Every first page
  and first change of each kind paid the same once per process.
- Whatever those first requests built (the view modules behind the URL conf, the admin, the
  API's schemas, compiled templates: about 57,000 objects) was not frozen, so every full pass
  of the cycle collector walked it: 34 ms, landing in whichever board change ran then.

The URL conf (every view module and what it imports), its reverse map, the template engines
with their tag libraries, this project's own templates (the cached loader keeps them) and
the translation catalogues of the languages the product offers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)


def warm_up() -> None:
    from django.template import TemplateDoesNotExist, TemplateSyntaxError, engines
    from django.urls import get_resolver
    from django.utils import translation

    len(get_resolver().reverse_dict)
    base = Path(settings.BASE_DIR).resolve()
    for engine in engines.all():
        for directory in engine.template_dirs:
            directory = Path(directory).resolve()
            if not directory.is_relative_to(base) or not directory.is_dir():
                continue  # third-party templates (the admin's) are compiled when first used
            for path in sorted(directory.rglob("*.html")):
                name = path.relative_to(directory).as_posix()
                try:
                    engine.get_template(name)
                except (TemplateDoesNotExist, TemplateSyntaxError):
                    # Not fatal here: the page that uses it shows the error as before.
                    log.warning("template %s does not compile", name, exc_info=True)
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Board")
