"""Page objects: one class per page shape, turning a response into Message fields.

Spiders only route (which links to follow); everything that reads a body
lives here, so each shape is tested on saved pages without a crawler.
Every page object raises `ParseError` (or its subclass `BlockedError`) on
a body it cannot read, and never any other exception.
"""

from crawlers.pages.base import BlockedError, PageInput, ParseError

__all__ = ["BlockedError", "PageInput", "ParseError"]
