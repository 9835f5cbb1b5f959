"""Publishing: the weekly slot, posts of appeals, and their delivery to each channel.

Inner shape as the rest of the portal: ``models`` (tables), ``services`` (behaviour),
``jobs`` (thin job wrappers) and ``channels`` (one adapter per network behind the
interface in :mod:`portal.publishing.channels.base`).
"""
