"""Channel adapters: one module per network, each a :class:`~.base.Channel`."""
