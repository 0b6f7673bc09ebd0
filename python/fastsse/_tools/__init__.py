"""Tooling, apart from the library: the live demo (``fastsse demo``), the parse benchmark
(``fastsse bench``), its corpora, and the end-to-end clients that the demo and ``benches/``
compare. Only the command line (cli.py), ``benches/`` and the tests import from here."""
