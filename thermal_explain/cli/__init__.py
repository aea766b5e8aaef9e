"""The ``thermal-explain`` command line."""
