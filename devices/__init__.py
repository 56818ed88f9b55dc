"""The NFC/IC reader bridge: PC/SC readers (pyscard) in, GraphQL taps out.

It talks to the API like any other client, with the terminal's key, and never imports domain/.
`yikatong reader --api URL --terminal-key-file F` runs it (devices/cli.py).
"""

__version__ = "0.1.0"
