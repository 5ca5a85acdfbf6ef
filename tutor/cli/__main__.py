"""``python -m tutor.cli`` is the same as the ``tutor`` console script."""

from tutor.cli import main

raise SystemExit(main())
