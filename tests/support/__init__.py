"""Helpers shared by the test directories, and the ``figure`` plugin. Among them:

- ``figures``: the ``figure`` fixture and the "reliability figures" summary, registered by
  ``tests/conftest.py`` as a pytest plugin;
- ``emulated``: the platform emulator as the driver and client tests use it (a request
  log, reply rewrites, seeded runs and audit events, ``serve`` over loopback);
- ``scale``: ``KNEO_RELIABILITY_SCALE``, the multiplier of every iteration count;
- ``scripted_server``: a raw-socket HTTP/1.1 peer on 127.0.0.1 that misbehaves on cue;
- ``socket_subject`` and ``flavoured``: one async test body for the three client flavours
  (asyncio, trio, blocking), with the oracles the socket tests share;
- ``tls`` and ``trust_store``: trustme certificates, a recording TLS server, private CAs;
- ``spec``: what the pinned OpenAPI file under ``spec/`` declares.
"""
