"""The portal's own channel: the appeal page and the agency's Atom feed.

Nothing is sent anywhere. The appeal is on its page and in the feed as soon as it is
published; a delivery to this channel records that page as where the post landed, so
the post page shows it beside the networks. The engine checks that every appeal of
the post is still published before any channel is called, this one included.
"""

from __future__ import annotations

from typing import ClassVar

from portal.publishing.channels.base import Channel, Draft, Published, Steps
from portal.publishing.channels.registry import register

NETWORK = "portal"


@register
class PortalChannel(Channel):
    network: ClassVar[str] = NETWORK
    # The page follows the appeal: solved shows on it, withdrawn takes it down.
    edits_in_place: ClassVar[bool] = True
    can_delete: ClassVar[bool] = True

    def test_connection(self) -> str:
        return "the appeal pages and the Atom feed of this portal"

    def publish(self, draft: Draft, steps: Steps) -> Published:
        return Published(remote_id=draft.key, url=draft.link)

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        return Published(remote_id=draft.key, url=draft.link)

    def update(self, published: Published, text: str) -> Published:
        return published

    def delete(self, published: Published) -> None:
        # The appeal's withdrawal already took the page and its feed entry down.
        return None
