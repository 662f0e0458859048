"""Golden files of the core's retry classification (T03) and error tree (T10), and the code
that regenerates them.

Regenerate after an intentional, reviewed change with::

    PYTHONPATH=. python -m tests.proto.golden.regenerate
"""
