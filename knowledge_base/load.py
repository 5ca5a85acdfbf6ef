"""Load documents: the public names of ``knowledge_base.loaders``, kept importable from here.

The loaders live in ``knowledge_base/loaders/`` (one module per format plus the shared block
model); ``from knowledge_base.load import load_document, Document, ...`` keeps working.
"""

from __future__ import annotations

from knowledge_base.loaders import *  # noqa: F403  (the facade: exactly the package's names)
from knowledge_base.loaders import __all__ as __all__
