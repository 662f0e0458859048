"""Golden files of the reliability tests, and the code that regenerates them.

Regenerate after an intentional, reviewed change with::

    PYTHONPATH=. python -m tests.reliability.golden.regenerate
"""
