"""Published checkpoints by name: ``--ckpt zoo:NAME`` downloads, verifies and evaluates one.

:mod:`.registry` holds the entries (URLs, checksums, layouts, published
numbers with their sources), :mod:`.download` gets a file into the cache and
checks it before anything loads it, :mod:`.cli` lists them. The ``zoo``
scheme is registered in :mod:`siambench.checkpoints.locate`, so this package
is imported only when a zoo name is used.
"""
