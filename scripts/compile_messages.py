"""Compile the translation catalogues (locale/*/LC_MESSAGES/django.po -> .mo).

Uses GNU gettext's msgfmt through Django's compilemessages when it is installed (it also checks
the format strings), else polib (a test dependency), so that `make install`/`make test` work on
a fresh machine without gettext. The compiled .mo files are committed too: running the app needs
neither tool.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    catalogues = sorted((ROOT / "locale").glob("*/LC_MESSAGES/django.po"))
    if shutil.which("msgfmt"):
        for po in catalogues:
            subprocess.run(["msgfmt", "--check-format", "-o", str(po.with_suffix(".mo")), str(po)], check=True)
    else:
        try:
            import polib
        except ImportError:
            print("Neither msgfmt (Debian: apt-get install gettext) nor polib is installed; "
                  "keeping the committed .mo files.", file=sys.stderr)
            return 0
        for po in catalogues:
            polib.pofile(str(po)).save_as_mofile(str(po.with_suffix(".mo")))
    print(f"compiled {len(catalogues)} catalogues")
    return 0


if __name__ == "__main__":
    sys.exit(main())
