"""The commands: one module per ``python -m loadtests X``, each with ``main(argv) -> int``.

A command parses its arguments, wires the kits of ``driver``, ``analysis`` and ``reporting`` together and
prints; it holds no machinery another command needs, and nothing below imports a command.
"""
