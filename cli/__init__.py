"""The command line on top of everything: ``smartfarm`` and its subcommands, ``smartfarm up`` and the local services.

Nothing imports this package; it imports the components (``edge``, ``stream``, ``storage``, ``ml``) and the
ground (``smartfarm``).
"""
