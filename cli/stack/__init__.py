"""The local stack behind ``smartfarm up``: its components (``components``), the simulated farm (``farm``) and how
they are put together from the settings (``assemble``)."""
