"""The default training text: documentation that ships with every CPython.

``pydoc_data.topics`` holds the language-reference topics that ``help()``
shows (about 465,000 characters of English with Python code in it). It is part
of the standard library, so a model can be trained on any machine with no
download.
"""

from __future__ import annotations

__all__ = ["default_corpus"]


def default_corpus() -> str:
    """The ``help()`` topics of this Python, in sorted key order, separated by a
    blank line. The same Python version always gives the same string."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))
