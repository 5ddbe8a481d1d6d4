import functools

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _memoize_redis_version() -> None:
    """redis-py 7 looks its own version up in the installed packages' metadata for every new
    connection (`redis.utils.get_lib_version`, for CLIENT SETINFO): a scan of sys.path that
    showed up as 14 % of the event loop's time when 100 websockets disconnected at once. The
    answer cannot change while the process runs, so it is computed once."""
    try:
        import redis.utils
    except ImportError:  # pragma: no cover - redis is a dependency
        return
    if not hasattr(redis.utils.get_lib_version, "cache_info"):
        redis.utils.get_lib_version = functools.lru_cache(maxsize=1)(redis.utils.get_lib_version)


class WorkshopsConfig(AppConfig):
    name = "workshops"
    verbose_name = _("Workshops")

    def ready(self):
        _memoize_redis_version()
        from workshops import progress, selectors

        progress.register(
            "familiarize", selectors.FAMILIARIZE_COLUMNS, selectors.familiarize_progress,
            status=selectors.familiarize_status, pages=selectors.FAMILIARIZE_PAGES,
        )
