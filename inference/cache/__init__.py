"""The node-local model cache, free of Django: content-addressed blobs, fetching from URLs, PyPI
packages and peers, the CTranslate2 whisper conversion and the peer file server.

The Django side (catalog, holdings, single-flight lock, commands) lives in inference.services.
"""
