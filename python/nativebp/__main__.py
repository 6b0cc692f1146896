"""``python -m nativebp <command>``: see ``python -m nativebp --help``."""
from .cli import main

raise SystemExit(main())
