"""``python -m stnlib``: see :mod:`stnlib.cli`."""

from .cli import main

raise SystemExit(main())
