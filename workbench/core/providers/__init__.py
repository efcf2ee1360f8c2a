"""Provider adapters: one module per wire format, all behind the :class:`Provider` protocol."""
