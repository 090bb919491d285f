"""`python -m chatforge` is the same as the `chatforge` command."""

from chatforge.cli import main

raise SystemExit(main())
