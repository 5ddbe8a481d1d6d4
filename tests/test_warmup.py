"""calma/warmup.py: what a server process builds at start, before it freezes it."""

from django.template import engines

from calma.warmup import warm_up


def test_the_project_templates_are_compiled_at_start():
    """The board's card partials come from discussion/board.html: compiled at start, the first
    card change of a process does not compile them (it took 56 ms of its command)."""
    from django.template.loaders.cached import Loader as Cached

    loader = engines["django"].engine.template_loaders[0]
    loader = next(inner for inner in [loader, *getattr(loader, "loaders", [])] if isinstance(inner, Cached))
    loader.reset()
    assert "discussion/board.html" not in loader.get_template_cache
    warm_up()
    assert "discussion/board.html" in loader.get_template_cache
    assert "base.html" in loader.get_template_cache
